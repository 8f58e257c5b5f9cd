import AMQPClient
import ArgumentParser
import Conductor
import Foundation

/// `--state-dir` for launch, status, fwd and terminate.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: "Directory of the coordinator state (state.sqlite, instance directories). Default: $CONDUCTOR_STATE_DIR, else ~/.local/state/conductor.")
    var stateDir: String?

    var directory: String {
        if let stateDir { return stateDir.hasPrefix("/") ? stateDir : FileManager.default.currentDirectoryPath + "/" + stateDir }
        return Self.defaultDirectory()
    }

    /// Without --state-dir: $CONDUCTOR_STATE_DIR, else ~/.local/state/conductor.
    static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let fromEnvironment = environment["CONDUCTOR_STATE_DIR"], !fromEnvironment.isEmpty { return fromEnvironment }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state/conductor"
    }

    func openStore() throws -> SQLiteStateStore {
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        return try SQLiteStateStore(path: self.directory + "/state.sqlite")
    }
}

/// `--broker`, `--agent-broker` and `--trusted-user` for launch and fwd.
struct LaunchBusOptions: ParsableArguments {
    @Option(name: .long, help: "AMQP URL of an existing bus for the coordinator (its user is the agents' trusted user); default: an embedded broker.")
    var broker: String?

    @Option(name: .long, help: "AMQP URL the agents connect with (with --broker; default: the --broker URL).")
    var agentBroker: String?

    @Option(name: .long, help: "The user whose jobs the agents accept (with --broker; default: the --broker URL's user, which must be the login that sends them).")
    var trustedUser: String?

    @Option(
        name: .long,
        help: "The address the embedded broker listens on (default 127.0.0.1). Members on other machines (ssh, ec2 providers) need one they reach: 0.0.0.0, or an address of this machine; only the agent login is accepted from beyond loopback.")
    var busListen: String?

    @Option(
        name: .long,
        help: "With --broker: its management API, http://USER:PASSWORD@HOST:PORT, through which each agent gets a broker login of its own (default: the --broker login at port 15672 of its host; RabbitMQ needs the rabbitmq_management plugin and an administrator).")
    var busAdmin: String?

    @Flag(
        name: .long,
        help: "With --broker: give every agent the --agent-broker login instead of one of its own (agents can then read each other's jobs and answer for each other; for buses whose users you cannot manage).")
    var sharedAgentLogin = false

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
        if self.broker != nil, self.busListen != nil {
            throw ValidationError("--bus-listen is for the embedded broker; with --broker the agents use that broker's address")
        }
        if let listen = self.busListen, listen.isEmpty || listen.contains(".") && listen.contains(":") {
            throw ValidationError("--bus-listen takes an address (0.0.0.0, 10.0.0.1), not '\(listen)'; the port is chosen by the broker")
        }
    }

    /// `record`: where an embedded broker's port and passwords are kept (see
    /// `EmbeddedBusRecord`), so that `fwd` can bring back the bus a crashed launch's
    /// instances still reconnect to.
    func start(record: String? = nil) async throws -> LaunchBus {
        try await LaunchBus.start(
            broker: self.broker, agentBroker: self.agentBroker, trustedUser: self.trustedUser, record: record, listen: self.busListen,
            busAdmin: self.busAdmin, sharedAgentLogin: self.sharedAgentLogin)
    }
}
