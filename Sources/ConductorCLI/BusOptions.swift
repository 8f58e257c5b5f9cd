import AMQPClient
import ArgumentParser
import Foundation

/// `--broker URL` for every command that talks to the bus. Where the URL comes from, first
/// found wins: the flag, `CONDUCTOR_BROKER_URL`, key "broker" of
/// `~/.config/conductor/config.json`, then of `/etc/conductor/config.json`, else the
/// local default.
struct BusOptions: ParsableArguments {
    static let defaultURL = "amqp://guest:guest@127.0.0.1:5672/%2F"
    static let environmentVariable = "CONDUCTOR_BROKER_URL"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "AMQP URL of the bus, amqp://USER:PASS@HOST:PORT/VHOST.",
            discussion: "Default: $CONDUCTOR_BROKER_URL, else \"broker\" in ~/.config/conductor/config.json or /etc/conductor/config.json, else \(BusOptions.defaultURL).",
            valueName: "URL"))
    var broker: String?

    /// The URL to use and where it came from (for the startup line).
    func resolvedURL(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (url: String, source: String) {
        if let broker { return (broker, "--broker") }
        if let fromEnvironment = environment[Self.environmentVariable], !fromEnvironment.isEmpty {
            return (fromEnvironment, Self.environmentVariable)
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
            if let url = (object as? [String: Any])?["broker"] as? String { return (url, file) }
        }
        return (Self.defaultURL, "default")
    }

    func configuration() throws -> (AMQPConnectionConfiguration, source: String) {
        let (url, source) = try self.resolvedURL()
        do {
            return (try AMQPConnectionConfiguration(url: url), source)
        } catch {
            throw ValidationError("broker URL from \(source) is not usable: \(error.message)")
        }
    }
}
