import AMQPClient
import ArgumentParser
import Conductor
import Foundation

/// `--state`, `--state-dir` and `--state-key` for the commands that open the state store.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: "Directory of the coordinator state (state.sqlite, instance directories). Default: $CONDUCTOR_STATE_DIR, else ~/.local/state/conductor.")
    var stateDir: String?

    @Option(
        name: .customLong("state"),
        help: ArgumentHelp(
            "Where the records are: a state directory or .sqlite file (SQLite, the default: state.sqlite in --state-dir), or postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (PostgreSQL, one state shared by several coordinators; without a password in the URL, $PGPASSWORD). Default: $CONDUCTOR_STATE.",
            valueName: "dir|url"))
    var stateLocation: String?

    @Option(
        name: .long,
        help: "The key file that seals secrets and job payloads in the state. Default: $CONDUCTOR_STATE_KEY, else state.key in the state directory, made on first use. Every coordinator of one PostgreSQL state needs a copy of the same key; a missing or other key is an error.")
    var stateKey: String?

    /// `--state`, else $CONDUCTOR_STATE.
    var stateValue: String? {
        if let stateLocation, !stateLocation.isEmpty { return stateLocation }
        let fromEnvironment = ProcessInfo.processInfo.environment["CONDUCTOR_STATE"]
        return fromEnvironment?.isEmpty == false ? fromEnvironment : nil
    }

    /// The directory of the coordinator's files: --state-dir, else a --state that is a
    /// directory (or the directory of a .sqlite file), else the default.
    var directory: String {
        if let stateDir { return absolutePath(stateDir) }
        if let value = self.stateValue, !value.contains("://") {
            let path = absolutePath(value)
            return path.hasSuffix(".sqlite") ? (path as NSString).deletingLastPathComponent : path
        }
        return Self.defaultDirectory()
    }

    func validate() throws {
        do {
            _ = try self.location()
        } catch {
            throw ValidationError("--state: \(error)")
        }
    }

    /// The store `--state` names (SQLite in the state directory when none).
    func location() throws(StateStoreError) -> StateLocation {
        try StateLocation(self.stateValue, stateDirectory: self.directory)
    }

    /// The key file given, as an absolute path.
    var keyFile: String? { self.stateKey.map(absolutePath) }

    /// The same options for a `conductor serve` started in the background.
    var arguments: [String] {
        var arguments = ["--state-dir", self.directory]
        if let value = self.stateValue, value.contains("://") { arguments += ["--state", value] }
        if let keyFile = self.keyFile { arguments += ["--state-key", keyFile] }
        return arguments
    }

    /// Without --state-dir: $CONDUCTOR_STATE_DIR, else ~/.local/state/conductor.
    static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let fromEnvironment = environment["CONDUCTOR_STATE_DIR"], !fromEnvironment.isEmpty { return fromEnvironment }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state/conductor"
    }

    func openStore() async throws -> any CoordinatorStateStore {
        try await self.location().open(stateDirectory: self.directory, keyFile: self.keyFile)
    }
}

/// `--broker`, `--agent-broker` and `--trusted-user` for launch and fwd.
struct LaunchBusOptions: ParsableArguments {
    @Option(
        name: .customLong("broker"),
        help: "AMQP URL of an existing bus for the coordinator (its user is the agents' trusted user); default: an embedded broker. For a cluster, the nodes' URLs separated by commas, or --broker repeated: the coordinator and its agents move to the next node when theirs goes away.")
    var brokers: [String] = []

    @Option(
        name: .customLong("agent-broker"),
        help: "AMQP URL the agents connect with (with --broker; default: the --broker URL); several, comma-separated or repeated, for a cluster's nodes.")
    var agentBrokers: [String] = []

    /// `--broker` as one comma-separated list, nil without it.
    var broker: String? { self.brokers.isEmpty ? nil : self.brokers.joined(separator: ",") }
    /// `--agent-broker` as one comma-separated list, nil without it.
    var agentBroker: String? { self.agentBrokers.isEmpty ? nil : self.agentBrokers.joined(separator: ",") }

    @Option(name: .long, help: "The user whose jobs the agents accept (with --broker; default: the --broker URL's user, which must be the login that sends them).")
    var trustedUser: String?

    @Option(
        name: .long,
        help: "The address the embedded broker listens on (default 127.0.0.1). Members on other machines (ssh, ec2 providers) need one they reach: 0.0.0.0, or an address of this machine; only the agents' logins are accepted from beyond loopback, and only over TLS (--bus-tls-cert) unless --insecure.")
    var busListen: String?

    @Option(
        name: .long,
        help: "With --broker: its management API, http://USER:PASSWORD@HOST:PORT, through which each agent gets a broker login of its own (default: the --broker login at port 15672 of its host; RabbitMQ needs the rabbitmq_management plugin and an administrator).")
    var busAdmin: String?

    @Flag(
        name: .long,
        help: "With --broker: give every agent the --agent-broker login instead of one of its own (agents can then read each other's jobs and answer for each other; for buses whose users you cannot manage).")
    var sharedAgentLogin = false

    @Option(
        name: .long,
        help: "PEM certificate (chain) of the embedded broker for other machines: with it, they connect over TLS (amqps) to a listener on --bus-listen, and the plain listener stays on loopback. It must name the address the instances reach this machine at (an IP address or DNS name in its subject alternative names).")
    var busTlsCert: String?

    @Option(name: .long, help: "PEM private key of --bus-tls-cert.")
    var busTlsKey: String?

    @Option(
        name: .long,
        help: "PEM CA certificate(s) the agents verify --bus-tls-cert with, copied to each remote instance. Default: the certificate itself when it is self-signed, else the instances' system trust store.")
    var busTlsCa: String?

    func validate() throws {
        if self.broker == nil, self.busAdmin != nil || self.sharedAgentLogin {
            throw ValidationError("--bus-admin and --shared-agent-login are for a --broker given; the embedded broker makes the agents' logins itself")
        }
        if self.busAdmin != nil, self.sharedAgentLogin {
            throw ValidationError("--bus-admin makes each agent a login of its own; --shared-agent-login gives them one: choose one")
        }
        if self.broker == nil, self.agentBroker != nil || self.trustedUser != nil {
            throw ValidationError("--agent-broker and --trusted-user need --broker (the embedded broker makes its own users)")
        }
        if self.broker != nil, self.busListen != nil || self.busTlsCert != nil || self.busTlsKey != nil || self.busTlsCa != nil {
            throw ValidationError("--bus-listen and --bus-tls-* are for the embedded broker; with --broker the agents use that broker's address (an amqps:// URL for TLS)")
        }
        if let listen = self.busListen, listen.isEmpty || listen.contains(".") && listen.contains(":") {
            throw ValidationError("--bus-listen takes an address (0.0.0.0, 10.0.0.1), not '\(listen)'; the port is chosen by the broker")
        }
        if (self.busTlsCert == nil) != (self.busTlsKey == nil) { throw ValidationError("--bus-tls-cert and --bus-tls-key go together") }
        if self.busTlsCa != nil, self.busTlsCert == nil { throw ValidationError("--bus-tls-ca needs --bus-tls-cert and --bus-tls-key") }
    }

    /// The TLS files with absolute paths (a background `serve` and `fwd` read them from elsewhere).
    var tls: LaunchBusTLS? {
        guard let certificate = self.busTlsCert, let key = self.busTlsKey else { return nil }
        return LaunchBusTLS(certificate: absolutePath(certificate), key: absolutePath(key), ca: self.busTlsCa.map(absolutePath))
    }

    /// The same options for a `conductor serve` started in the background.
    var arguments: [String] {
        var arguments: [String] = []
        if let broker = self.broker { arguments += ["--broker", broker] }
        if let agentBroker = self.agentBroker { arguments += ["--agent-broker", agentBroker] }
        if let trustedUser = self.trustedUser { arguments += ["--trusted-user", trustedUser] }
        if let listen = self.busListen { arguments += ["--bus-listen", listen] }
        if let tls = self.tls {
            arguments += ["--bus-tls-cert", tls.certificate, "--bus-tls-key", tls.key] + (tls.ca.map { ["--bus-tls-ca", $0] } ?? [])
        }
        if let admin = self.busAdmin { arguments += ["--bus-admin", admin] }
        if self.sharedAgentLogin { arguments.append("--shared-agent-login") }
        return arguments
    }

    /// Where an embedded bus listens, for the line that says so: `127.0.0.1:PORT`, and
    /// `amqps on HOST:PORT` when other machines reach it over TLS.
    static func listening(_ bus: LaunchBus) -> String {
        let host = bus.broker?.configuration.host ?? bus.console.host
        let plain = "\(host):\(bus.console.port)"
        guard case .reachableOverTLS(let tls) = bus.reach else { return plain }
        return plain + ", amqps on \(bus.broker?.configuration.tls?.host ?? host):\(tls.port)"
    }

    /// Who may log in from where.
    static func logins(_ reach: BusReach) -> String {
        switch reach {
        case .loopbackOnly: "loopback only"
        case .reachable: "the agents' logins also from other machines, in clear text (--insecure); conductor and recipe from loopback only"
        case .reachableOverTLS: "the agents' logins also from other machines, over TLS; conductor and recipe from loopback only"
        }
    }

    /// `record`: where an embedded broker's port and passwords are kept (see
    /// `EmbeddedBusRecord`), so that `fwd` can bring back the bus a crashed launch's
    /// instances still reconnect to.
    func start(record: String? = nil, insecure: Bool) async throws -> LaunchBus {
        try await LaunchBus.start(
            broker: self.broker, agentBroker: self.agentBroker, trustedUser: self.trustedUser, record: record, listen: self.busListen, tls: self.tls,
            insecure: insecure, busAdmin: self.busAdmin, sharedAgentLogin: self.sharedAgentLogin)
    }
}

/// `--insecure` for launch, serve and fwd: what lifts the refusal of a listener beyond
/// loopback without TLS (the embedded bus, the HTTP API).
struct InsecureOption: ParsableArguments {
    @Flag(
        name: .long,
        help: "Accept listening beyond loopback in clear text: --bus-listen without --bus-tls-cert (agents' passwords and jobs), --http without --http-tls-cert (instances' tokens and configurations). Recorded with an embedded bus, so fwd brings it back the same.")
    var insecure = false

    /// Refuses, before anything binds, a listener given beyond loopback without TLS.
    func check(bus: LaunchBusOptions, http: HTTPOptions) throws {
        guard !self.insecure else { return }
        if let listen = bus.busListen, !ListenAddress.isLoopback(listen), bus.busTlsCert == nil {
            throw ValidationError(LaunchBus.clearTextRefusal(listen: listen))
        }
        if let refusal = http.clearTextRefusal { throw ValidationError(refusal) }
    }
}

/// `path` from the current directory.
func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
