import AMQPClient
import Broker
import Foundation
import Logging
import NIOCore
import NIOSSL

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
    /// loopback, or a broker given by URL), and whether over TLS only.
    public var reach: BusReach = .loopbackOnly
    /// Makes each agent's own login: the embedded broker's admin API, or the management
    /// API of the broker given (`--bus-admin`). Nil with `--shared-agent-login`.
    public var accounts: BusAccounts?

    /// `listen`: the address an embedded broker binds (default 127.0.0.1); beyond loopback
    /// (`0.0.0.0`, or an address of this machine) the `agent` user may log in from other
    /// machines, the other users still from loopback only. Beyond loopback it takes `tls`
    /// (then other machines connect over TLS only, the plain listener stays on loopback),
    /// or `insecure` to accept clear text; else it is refused before anything binds. A
    /// recorded bus comes back with its recorded listen, TLS and `insecure`, each unless
    /// given again.
    ///
    /// With a broker given by URL, `busAdmin` is its management API with an administrator's
    /// login (default: the `--broker` login at port 15672 of its host); `sharedAgentLogin`
    /// gives every agent the `agentBroker` login instead of one of its own.
    public static func start(
        broker url: String?, agentBroker: String? = nil, trustedUser: String? = nil, record: String? = nil, listen: String? = nil,
        tls: LaunchBusTLS? = nil, insecure: Bool = false, busAdmin: String? = nil, sharedAgentLogin: Bool = false
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
                // Checked when a launch begins (`Launcher`), not here: a coordinator serving only
                // locks and events needs no management API.
                do {
                    accounts = try BusAccounts(url: admin, vhost: configuration.virtualHost)
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
        var (listen, tls, insecure) = (listen, tls.map { LaunchBusTLS($0, port: nil) }, insecure)
        var recordedListen: String?
        if let record, var saved = EmbeddedBusRecord.read(record) {
            (listen, insecure) = (listen ?? saved.listen, insecure || saved.insecure == true)
            recordedListen = saved.listen == listen ? record : nil
            // The recorded amqps port too, so that remote agents reconnect to it.
            tls = (tls ?? saved.tls).map { LaunchBusTLS($0, port: saved.tls?.port) }
            (saved.listen, saved.tls, saved.insecure) = (listen, tls, insecure ? true : nil)
            try Self.refuseClearText(saved, recorded: recordedListen)
            if let bus = try? await Self.embedded(saved, restored: true) { return bus }
        }
        var fresh = EmbeddedBusRecord(port: 0, conductorPassword: Self.password(), recipePassword: Self.password(), listen: listen)
        (fresh.tls, fresh.insecure) = (tls.map { LaunchBusTLS($0, port: nil) }, insecure ? true : nil)
        try Self.refuseClearText(fresh, recorded: recordedListen)
        let bus = try await Self.embedded(fresh, restored: false)
        if let record {
            fresh.port = bus.console.port
            if case .reachableOverTLS(let endpoint) = bus.reach { fresh.tls?.port = endpoint.port }
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

    /// What `--bus-listen` beyond loopback without TLS is refused with.
    public static func clearTextRefusal(listen: String) -> String {
        ListenAddress.clearTextRefusal("--bus-listen \(listen)", carries: "agents' passwords and jobs", remedy: "give --bus-tls-cert and --bus-tls-key")
    }

    private static func refuseClearText(_ record: EmbeddedBusRecord, recorded path: String?) throws(HostError) {
        guard let listen = record.listen, !ListenAddress.isLoopback(listen), record.tls == nil else { return }
        let recorded = path.map { " (the address is recorded in \($0))" } ?? ""
        guard record.insecure == true else { throw HostError(Self.clearTextRefusal(listen: listen) + recorded) }
        // The broker has one plain listener: on that address only, the coordinator's
        // loopback-only login (which connects to 127.0.0.1) would find nothing there.
        if !ListenAddress.isWildcard(listen) {
            throw HostError(
                "--bus-listen \(listen) in clear text would put the broker's only plain listener on \(listen), where the coordinator on 127.0.0.1 cannot reach it\(recorded); give --bus-tls-cert and --bus-tls-key (the plain listener then stays on loopback), or --bus-listen 0.0.0.0")
        }
    }

    private static func embedded(_ record: EmbeddedBusRecord, restored: Bool) async throws -> LaunchBus {
        let listen = record.listen ?? "127.0.0.1"
        let beyondLoopback = !ListenAddress.isLoopback(listen)
        // Agents log in with logins of their own, made through the admin API (only the
        // coordinator's `conductor` may use it, from this machine).
        var users = [BrokerUser(name: "conductor", password: record.conductorPassword, loopbackOnly: true)]
        if let recipe = record.recipePassword { users.append(BrokerUser(name: "recipe", password: recipe, loopbackOnly: true)) }
        // With TLS, other machines get the amqps listener only: the plain one, which this
        // machine's agents, the coordinator and recipes use, stays on loopback.
        var configuration = BrokerConfiguration(
            host: record.tls == nil ? listen : "127.0.0.1", port: record.port, users: users,
            permissions: [BrokerPermission(user: "conductor", vhost: "/")] + (record.recipePassword == nil ? [] : [RecipeLogin.permission]))
        configuration.tls = record.tls.map {
            BrokerTLSConfiguration(host: listen, port: $0.port ?? 0, certificateChainFile: $0.certificate, privateKeyFile: $0.key)
        }
        if record.recipePassword != nil { configuration.topicPermissions = [RecipeLogin.topicPermission] }
        configuration.admin = AdminConfiguration(host: "127.0.0.1", port: 0, administrators: ["conductor"])
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "conductor.broker", factory: { _ in SwiftLogNoOpLogHandler() }))
        let port: Int
        var reach: BusReach = beyondLoopback ? .reachable : .loopbackOnly
        do {
            port = try await server.start()
            if let tls = record.tls, let tlsPort = server.tlsPort {
                let endpoint = BusTLSEndpoint(port: tlsPort, caFile: try tls.agentsCAFile(), names: try tls.names())
                try await Self.checkAgentsVerify(
                    endpoint, at: ListenAddress.isWildcard(listen) ? "127.0.0.1" : listen, password: record.conductorPassword, certificate: tls.certificate)
                if beyondLoopback { reach = .reachableOverTLS(endpoint) }
            }
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
            restored: restored, reach: reach, accounts: accounts)
    }

    /// An agent must be able to verify the broker's certificate with the CA it is given:
    /// checked here, from this machine (the chain only: the name agents connect to depends
    /// on the machine they are on), rather than as agents that never come up.
    /// The `conductor` login may only come from loopback: refused after the handshake from
    /// a specific address, which is as good (the certificate was verified by then).
    private static func checkAgentsVerify(_ endpoint: BusTLSEndpoint, at host: String, password: String, certificate: String) async throws(HostError) {
        let configuration = AMQPConnectionConfiguration(
            host: host, port: endpoint.port, username: "conductor", password: password, connectionName: "conductor: TLS check",
            connectTimeout: .seconds(10), recovery: .disabled, tls: .init(caFile: endpoint.caFile, verifyHostname: false))
        do {
            let connection = try await AMQPConnection.connect(configuration)
            try? await connection.close()
        } catch let error as AMQPError where error.code == .authenticationFailed {
            return
        } catch {
            let ca = endpoint.caFile.map { "the CA in \($0)" } ?? "the system's trusted CAs"
            throw HostError(
                "an agent cannot verify the bus's certificate \(certificate) with \(ca) (\(error)); give --bus-tls-ca with the CA that signed it")
        }
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
    /// Its amqps listener (`--bus-tls-*`, and the port it got); absent: none.
    public var tls: LaunchBusTLS?
    /// `--insecure`: clear text beyond loopback was accepted.
    public var insecure: Bool?

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

/// The certificate of an embedded launch bus that other machines reach (`--bus-tls-cert`,
/// `--bus-tls-key`, `--bus-tls-ca`, absolute paths), kept in its `EmbeddedBusRecord` with
/// the port its amqps listener got, so that `fwd` binds the same one again.
public struct LaunchBusTLS: Codable, Equatable, Sendable {
    public var certificate: String
    public var key: String
    /// What agents verify the broker with; nil: the certificate itself when it is
    /// self-signed, else the agents' system trust store.
    public var ca: String?
    /// The amqps listener's port; nil: a free one.
    public var port: Int?

    public init(certificate: String, key: String, ca: String? = nil, port: Int? = nil) {
        self.certificate = certificate
        self.key = key
        self.ca = ca
        self.port = port
    }

    init(_ files: LaunchBusTLS, port: Int?) {
        self = files
        self.port = port
    }

    /// `ca`, else the certificate when it signed itself (issuer = subject), else nil.
    func agentsCAFile() throws(HostError) -> String? {
        if let ca { return ca }
        let leaf = try self.leaf()
        return leaf.issuerName == leaf.subjectName ? self.certificate : nil
    }

    /// The IP addresses (as text) and DNS names the certificate is for.
    func names() throws(HostError) -> [String] {
        try self.leaf()._subjectAlternativeNames().compactMap { name -> String? in
            let bytes = Array(name.contents)
            switch name.nameType {
            case .dnsName: return String(decoding: bytes, as: UTF8.self)
            case .ipAddress: return try? SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: 0).ipAddress
            default: return nil
            }
        }
    }

    private func leaf() throws(HostError) -> NIOSSLCertificate {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(self.certificate)
        } catch {
            throw HostError("cannot read the bus's TLS certificate \(self.certificate): \(error)")
        }
        guard let leaf = chain.first else { throw HostError("no certificate in \(self.certificate)") }
        return leaf
    }
}
