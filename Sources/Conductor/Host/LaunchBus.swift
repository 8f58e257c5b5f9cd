import AMQPClient
import Broker
import Foundation
import Logging

/// The bus a launch (or fwd) runs on: the `--broker` given, or an embedded broker on a
/// free loopback port with fresh users (`conductor`, trusted by the agents and the
/// administrator of its admin API, and `recipe`), random passwords, loopback only. Each
/// agent gets a login of its own on it (`accounts`, `AgentIdentity`).
public struct LaunchBus: Sendable {
    public var console: AMQPConnectionConfiguration
    /// `console` as a URL, password included.
    public var consoleURL: String
    public var agentURL: String
    /// The login for local commands (`conductor lock`, `signal`, `wait`, `facts` in a shell
    /// on this machine), found through the coordinator's record: not the coordinator's own,
    /// whose user the agents trust. Nil on an external bus (its users are not ours to make).
    public var recipeURL: String?
    public var trustedUser: String
    public var broker: BrokerServer?
    /// An embedded broker brought back on the port and users of an `EmbeddedBusRecord`.
    public var restored = false
    /// Whether machines other than this one can reach the bus (`--bus-listen` beyond
    /// loopback, or a broker given by URL).
    public var reach: BusReach = .loopbackOnly
    /// Makes each agent's own login: the embedded broker's admin API, or the management
    /// API of the broker given (`--bus-admin`). Nil with `--shared-agent-login`.
    public var accounts: BusAccounts?

    /// `listen`: the address an embedded broker binds (default 127.0.0.1); beyond loopback
    /// (`0.0.0.0`, or an address of this machine) the `agent` user may log in from other
    /// machines, the other users still from loopback only.
    ///
    /// With a broker given by URL, `busAdmin` is its management API with an administrator's
    /// login (default: the `--broker` login at port 15672 of its host); `sharedAgentLogin`
    /// gives every agent the `agentBroker` login instead of one of its own.
    public static func start(
        broker url: String?, agentBroker: String? = nil, trustedUser: String? = nil, record: String? = nil, listen: String? = nil,
        busAdmin: String? = nil, sharedAgentLogin: Bool = false
    ) async throws -> LaunchBus {
        if let url {
            let configuration: AMQPConnectionConfiguration
            do {
                configuration = try AMQPConnectionConfiguration(url: url)
                if let agentBroker { _ = try AMQPConnectionConfiguration(url: agentBroker) }
            } catch {
                throw HostError("--broker/--agent-broker is not usable: \(error.message)")
            }
            var accounts: BusAccounts?
            if !sharedAgentLogin {
                let admin = busAdmin ?? Self.defaultAdminURL(configuration)
                do {
                    accounts = try BusAccounts(url: admin, vhost: configuration.virtualHost)
                    try await accounts?.check()
                } catch {
                    throw HostError("\(error.message) (each agent gets a login of its own, made through the broker's management API; give --bus-admin http://USER:PASSWORD@HOST:PORT, or --shared-agent-login to give every agent the --agent-broker login)")
                }
            }
            return LaunchBus(
                console: configuration, consoleURL: url, agentURL: agentBroker ?? url, recipeURL: nil, trustedUser: trustedUser ?? configuration.username,
                broker: nil, reach: .reachable, accounts: accounts)
        }
        // Bound again on the recorded port, with the recorded users, the instances of a
        // crashed launch reconnect by themselves; when the port is taken, a fresh bus.
        if let record, var saved = EmbeddedBusRecord.read(record) {
            if let listen { saved.listen = listen }
            if let bus = try? await Self.embedded(saved, restored: true) { return bus }
        }
        var fresh = EmbeddedBusRecord(port: 0, conductorPassword: Self.password(), recipePassword: Self.password(), listen: listen)
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

    /// `http://USER:PASSWORD@HOST:15672` for a broker URL: RabbitMQ's management port on
    /// the same host, with the same login.
    static func defaultAdminURL(_ configuration: AMQPConnectionConfiguration) -> String {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "http://\(AgentIdentity.percentEncoded(configuration.username)):\(AgentIdentity.percentEncoded(configuration.password))@\(host):15672"
    }

    private static func embedded(_ record: EmbeddedBusRecord, restored: Bool) async throws -> LaunchBus {
        let listen = record.listen ?? "127.0.0.1"
        let beyondLoopback = !listen.hasPrefix("127.") && listen != "::1" && listen != "localhost"
        // Agents log in with logins of their own, made through the admin API (only the
        // coordinator's `conductor` may use it, from this machine).
        var users = [BrokerUser(name: "conductor", password: record.conductorPassword, loopbackOnly: true)]
        if let recipe = record.recipePassword { users.append(BrokerUser(name: "recipe", password: recipe, loopbackOnly: true)) }
        var configuration = BrokerConfiguration(
            host: listen, port: record.port, users: users,
            permissions: [BrokerPermission(user: "conductor", vhost: "/")] + (record.recipePassword == nil ? [] : [RecipeLogin.permission]))
        configuration.admin = AdminConfiguration(host: "127.0.0.1", port: 0, administrators: ["conductor"])
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "conductor.broker", factory: { _ in SwiftLogNoOpLogHandler() }))
        let port: Int
        do {
            port = try await server.start()
        } catch {
            try? await server.shutdown()
            throw error
        }
        let consoleURL = "amqp://conductor:\(record.conductorPassword)@127.0.0.1:\(port)/%2F"
        let accounts = BusAccounts(
            admin: BrokerAdminClient(host: "127.0.0.1", port: server.adminPort ?? 0, username: "conductor", password: record.conductorPassword), vhost: "/")
        return LaunchBus(
            console: try AMQPConnectionConfiguration(url: consoleURL), consoleURL: consoleURL,
            agentURL: "amqp://127.0.0.1:\(port)/%2F",
            recipeURL: record.recipePassword.map { "amqp://recipe:\($0)@127.0.0.1:\(port)/%2F" }, trustedUser: "conductor", broker: server,
            restored: restored, reach: beyondLoopback ? .reachable : .loopbackOnly, accounts: accounts)
    }

    static func password() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<32).map { _ in alphabet.randomElement(using: &generator)! })
    }

    public func stop() async {
        try? await self.broker?.shutdown()
    }
}

/// An embedded launch bus as `<state-dir>/buses/<deployment>@<environment>.json` (mode
/// 0600 in a 0700 directory, like the secrets in state.sqlite): its loopback port and
/// the passwords of its `conductor` and `recipe` users (the agents' own logins are
/// deployment secrets in the state store). Written before any instance is
/// told the bus's URL (record first), read by `conductor fwd` to bring the same bus back
/// after a crash took the launch and its broker down.
public struct EmbeddedBusRecord: Codable, Equatable, Sendable {
    public var port: Int
    public var conductorPassword: String
    /// The shared `agent` login of records written before agents had logins of their own.
    public var agentPassword: String?
    /// The `recipe` user's (see `LaunchBus.recipeURL`); absent in records written before it.
    public var recipePassword: String?
    /// The address the broker binds (`--bus-listen`); absent: 127.0.0.1.
    public var listen: String?

    public static func path(stateDirectory: String, deployment: String, environment: String) -> String {
        "\(stateDirectory)/buses/\(deployment)@\(environment).json"
    }

    public static func read(_ path: String) -> EmbeddedBusRecord? {
        StateRecords.read(EmbeddedBusRecord.self, from: path)
    }

    public func write(_ path: String) throws(HostError) {
        try StateRecords.write(self, to: path)
    }
}
