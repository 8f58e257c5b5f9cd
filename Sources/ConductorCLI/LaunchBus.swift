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

    /// `record`: where an embedded broker's port and passwords are kept (see
    /// `EmbeddedBusRecord`), so that `fwd` can bring back the bus a crashed launch's
    /// instances still reconnect to.
    func start(record: String? = nil) async throws -> LaunchBus {
        try await LaunchBus.start(broker: self.broker, agentBroker: self.agentBroker, trustedUser: self.trustedUser, record: record)
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
    /// An embedded broker brought back on the port and users of an `EmbeddedBusRecord`.
    var restored = false

    static func start(broker url: String?, agentBroker: String? = nil, trustedUser: String? = nil, record: String? = nil) async throws -> LaunchBus {
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
        // Bound again on the recorded port, with the recorded users, the instances of a
        // crashed launch reconnect by themselves; when the port is taken, a fresh bus.
        if let record, let saved = EmbeddedBusRecord.read(record), let bus = try? await Self.embedded(saved, restored: true) {
            return bus
        }
        var fresh = EmbeddedBusRecord(port: 0, conductorPassword: Self.password(), agentPassword: Self.password())
        let bus = try await Self.embedded(fresh, restored: false)
        if let record {
            fresh.port = bus.console.port
            do {
                try fresh.write(record)
            } catch {
                await bus.stop()
                throw error
            }
        }
        return bus
    }

    private static func embedded(_ record: EmbeddedBusRecord, restored: Bool) async throws -> LaunchBus {
        let users = [
            BrokerUser(name: "conductor", password: record.conductorPassword, loopbackOnly: true),
            BrokerUser(name: "agent", password: record.agentPassword, loopbackOnly: true),
        ]
        let server = BrokerServer(
            configuration: BrokerConfiguration(
                host: "127.0.0.1", port: record.port, users: users, permissions: users.map { BrokerPermission(user: $0.name, vhost: "/") }),
            logger: Logger(label: "conductor.broker", factory: { _ in SwiftLogNoOpLogHandler() }))
        let port: Int
        do {
            port = try await server.start()
        } catch {
            try? await server.shutdown()
            throw error
        }
        let consoleURL = "amqp://conductor:\(record.conductorPassword)@127.0.0.1:\(port)/%2F"
        return LaunchBus(
            console: try AMQPConnectionConfiguration(url: consoleURL), consoleURL: consoleURL,
            agentURL: "amqp://agent:\(record.agentPassword)@127.0.0.1:\(port)/%2F", trustedUser: "conductor", broker: server,
            restored: restored)
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

/// An embedded launch bus as `<state-dir>/buses/<deployment>@<environment>.json` (mode
/// 0600 in a 0700 directory, like the secrets in state.sqlite): its loopback port and
/// the passwords of its `conductor` and `agent` users. Written before any instance is
/// told the bus's URL (record first), read by `conductor fwd` to bring the same bus back
/// after a crash took the launch and its broker down.
struct EmbeddedBusRecord: Codable, Equatable {
    var port: Int
    var conductorPassword: String
    var agentPassword: String

    static func path(stateDirectory: String, deployment: String, environment: String) -> String {
        "\(stateDirectory)/buses/\(deployment)@\(environment).json"
    }

    static func read(_ path: String) -> EmbeddedBusRecord? {
        readRecord(EmbeddedBusRecord.self, from: path)
    }

    func write(_ path: String) throws {
        try writePrivateRecord(self, to: path)
    }
}

/// A record `writePrivateRecord` wrote; nil when missing or unreadable.
func readRecord<Value: Decodable>(_ type: Value.Type, from path: String) -> Value? {
    FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(type, from: $0) }
}

/// Writes `value` as JSON to `path` atomically (a temporary file, then rename), mode 0600
/// in a directory created 0700: the state directory's records hold passwords or say who
/// owns what.
func writePrivateRecord<Value: Encodable>(_ value: Value, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let temporary = path + ".tmp"
    guard FileManager.default.createFile(atPath: temporary, contents: try JSONEncoder().encode(value), attributes: [.posixPermissions: 0o600]) else {
        throw ValidationError("cannot write \(temporary)")
    }
    guard rename(temporary, path) == 0 else { throw ValidationError("cannot write \(path)") }
}
