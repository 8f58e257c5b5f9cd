import AMQPClient
import ArgumentParser
import Broker
import Conductor
import Foundation
import Logging

/// `--state-dir` for launch, status, fwd and terminate.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: "Directory of the coordinator state (state.sqlite, instance directories). Default: $CONDUCTOR_STATE_DIR, else ~/.local/state/conductor.")
    var stateDir: String?

    var directory: String {
        if let stateDir { return stateDir.hasPrefix("/") ? stateDir : FileManager.default.currentDirectoryPath + "/" + stateDir }
        let environment = ProcessInfo.processInfo.environment
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

    func validate() throws {
        if self.broker == nil, self.agentBroker != nil || self.trustedUser != nil {
            throw ValidationError("--agent-broker and --trusted-user need --broker (the embedded broker makes its own users)")
        }
    }

    func start() async throws -> LaunchBus {
        try await LaunchBus.start(broker: self.broker, agentBroker: self.agentBroker, trustedUser: self.trustedUser)
    }
}

/// The bus a launch (or fwd) runs on: the `--broker` given, or an embedded broker on a
/// free loopback port with two fresh users (`conductor`, trusted by the agents, and
/// `agent`), random passwords, loopback only.
struct LaunchBus {
    var console: AMQPConnectionConfiguration
    /// `console` as a URL, password included.
    var consoleURL: String
    var agentURL: String
    var trustedUser: String
    var broker: BrokerServer?

    static func start(broker url: String?, agentBroker: String? = nil, trustedUser: String? = nil) async throws -> LaunchBus {
        if let url {
            let configuration: AMQPConnectionConfiguration
            do {
                configuration = try AMQPConnectionConfiguration(url: url)
                if let agentBroker { _ = try AMQPConnectionConfiguration(url: agentBroker) }
            } catch {
                throw ValidationError("--broker/--agent-broker is not usable: \(error.message)")
            }
            return LaunchBus(console: configuration, consoleURL: url, agentURL: agentBroker ?? url, trustedUser: trustedUser ?? configuration.username, broker: nil)
        }
        let conductorPassword = Self.password()
        let agentPassword = Self.password()
        let users = [
            BrokerUser(name: "conductor", password: conductorPassword, loopbackOnly: true),
            BrokerUser(name: "agent", password: agentPassword, loopbackOnly: true),
        ]
        let server = BrokerServer(
            configuration: BrokerConfiguration(host: "127.0.0.1", port: 0, users: users, permissions: users.map { BrokerPermission(user: $0.name, vhost: "/") }),
            logger: Logger(label: "conductor.broker", factory: { _ in SwiftLogNoOpLogHandler() }))
        let port = try await server.start()
        let consoleURL = "amqp://conductor:\(conductorPassword)@127.0.0.1:\(port)/%2F"
        return LaunchBus(console: try AMQPConnectionConfiguration(url: consoleURL), consoleURL: consoleURL, agentURL: "amqp://agent:\(agentPassword)@127.0.0.1:\(port)/%2F", trustedUser: "conductor", broker: server)
    }

    static func password() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<32).map { _ in alphabet.randomElement(using: &generator)! })
    }

    func stop() async {
        try? await self.broker?.shutdown()
    }
}
