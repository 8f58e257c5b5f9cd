import AMQPClient
import ArgumentParser
import Conductor
import Foundation

/// `--broker URL` for every command that talks to the bus. Where the URL comes from, first
/// found wins: the flag, `CONDUCTOR_BROKER_URL`, key "broker" of
/// `~/.config/conductor/config.json`, then of `/etc/conductor/config.json`, then (for the
/// commands recipes use) the live `conductor serve` recorded in the state directory, else
/// the local default.
struct BusOptions: ParsableArguments {
    /// Which login a command takes from a live local coordinator's record.
    enum LocalLogin {
        /// None: the command does not look for one (`agent`).
        case none
        /// Its recipe login (`lock`, `signal`, `wait`, `facts`): never the coordinator's own.
        case recipe
        /// The coordinator's login (`run`, which agents take only from the user they
        /// trust, and signs with the state directory's key: its operator's command).
        case coordinator
    }

    static let defaultURL = "amqp://guest:guest@127.0.0.1:5672/%2F"
    static let environmentVariable = "CONDUCTOR_BROKER_URL"

    @Option(
        name: .customLong("broker"),
        help: ArgumentHelp(
            "AMQP URL of the bus, amqp://USER:PASS@HOST:PORT/VHOST; for the nodes of a cluster, several URLs separated by commas or --broker repeated.",
            discussion: "With several nodes the first that answers is used and a lost connection moves to the next (the login, vhost and TLS settings are the first URL's). Default: $CONDUCTOR_BROKER_URL, else \"broker\" (a URL, a comma-separated list or an array of URLs) in ~/.config/conductor/config.json or /etc/conductor/config.json, else the bus of a `conductor serve` recorded in the state directory ($CONDUCTOR_STATE_DIR, else ~/.local/state/conductor), else \(BusOptions.defaultURL).",
            valueName: "URL"))
    var brokers: [String] = []

    /// The `--broker` URLs as one comma-separated list (what `AMQPConnectionConfiguration(url:)` reads), nil without the flag.
    var broker: String? { self.brokers.isEmpty ? nil : self.brokers.joined(separator: ",") }

    /// The URL, where it came from (for the startup line), and the scope of the coordinator
    /// whose record gave it.
    func resolved(
        local: LocalLogin = .none, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (url: String, source: String, scope: String?) {
        if let broker { return (broker, "--broker", nil) }
        if let fromEnvironment = environment[Self.environmentVariable], !fromEnvironment.isEmpty {
            return (fromEnvironment, Self.environmentVariable, nil)
        }
        var files: [String] = []
        if let home = environment["HOME"] { files.append(home + "/.config/conductor/config.json") }
        files.append("/etc/conductor/config.json")
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: data)
            } catch {
                throw ValidationError("\(file) is not valid JSON: \(error.localizedDescription)")
            }
            switch (object as? [String: Any])?["broker"] {
            case let url as String: return (url, file, nil)
            case let urls as [String] where !urls.isEmpty: return (urls.joined(separator: ","), file, nil)
            default: break
            }
        }
        if local != .none {
            let directory = StateOptions.defaultDirectory(environment: environment)
            if let record = CoordinatorRecord.live(stateDirectory: directory) {
                let source = "the coordinator recorded in \(CoordinatorRecord.path(stateDirectory: directory)) (pid \(record.pid))"
                switch local {
                case .coordinator:
                    return (record.broker, source, record.scope)
                case .recipe:
                    guard let recipe = record.recipe else {
                        throw ValidationError(
                            "\(source) serves on an external bus, whose users are not its to make: give --broker (or $\(Self.environmentVariable)) a login of that bus")
                    }
                    return (recipe, source, record.scope)
                case .none:
                    break
                }
            }
        }
        return (Self.defaultURL, "default", nil)
    }

    func configuration(local: LocalLogin = .none) throws -> (AMQPConnectionConfiguration, source: String) {
        let (configuration, source, _) = try self.configurationAndScope(local: local)
        return (configuration, source)
    }

    /// `configuration`, plus the scope of the coordinator whose record gave the URL.
    func configurationAndScope(local: LocalLogin) throws -> (AMQPConnectionConfiguration, source: String, scope: String?) {
        let (url, source, scope) = try self.resolved(local: local)
        do {
            return (try AMQPConnectionConfiguration(url: url), source, scope)
        } catch {
            throw ValidationError("broker URL from \(source) is not usable: \(error.message)")
        }
    }
}
