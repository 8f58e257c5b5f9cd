import AMQPClient
import Broker
import Foundation
import TestSupport
import Testing

/// A broker to check permissions on, driven only through its admin API (users,
/// permissions, topic permissions, with `BrokerAdminClient`) and AMQP: ours with its admin
/// API, or the test RabbitMQ through its management API. Each run has a vhost of its own
/// and user names with its own suffix, so runs (and other tests on the shared RabbitMQ)
/// never meet; the RabbitMQ vhost and users are deleted at the end.
struct PermissionBroker: Sendable {
    enum Kind: String, Sendable { case ours, rabbitMQ }

    let kind: Kind
    let admin: BrokerAdminClient
    let amqpHost: String
    let amqpPort: Int
    let vhost: String
    /// Appended to user names.
    let run: String

    static let rabbitMQAvailable = RabbitMQEnvironment.url != nil && RabbitMQEnvironment.managementURL != nil
    static let rabbitMQMissing: Comment = "RabbitMQ not available: needs CONDUCTOR_RABBITMQ_URL and CONDUCTOR_RABBITMQ_MGMT_URL (scripts/test.sh sets both; scripts/rabbitmq.sh start, url, mgmt-url)"

    /// A user name unique to this run.
    func user(_ base: String) -> String { "\(base)-\(self.run)" }

    func url(user: String, password: String) -> String {
        "amqp://\(user):\(password)@\(self.amqpHost):\(self.amqpPort)/\(BrokerAdminClient.segment(self.vhost))"
    }

    /// A connection without recovery: a close by the broker stays visible.
    func connect(user: String, password: String) async throws -> AMQPConnection {
        var configuration = try AMQPConnectionConfiguration(url: self.url(user: user, password: password))
        configuration.connectTimeout = .seconds(5)
        configuration.recovery = .disabled
        return try await AMQPConnection.connect(configuration)
    }

    /// guest, who may do everything in the run's vhost (to set up what users meet).
    func connectAsGuest() async throws -> AMQPConnection {
        try await self.connect(user: "guest", password: "guest")
    }

    /// A user with a password and permissions in the run's vhost, made through the admin API.
    func makeUser(_ base: String, password: String = "pw", configure: String, write: String, read: String) async throws -> String {
        let name = self.user(base)
        try await self.admin.createUser(name, password: password)
        try await self.admin.setPermissions(user: name, vhost: self.vhost, configure: configure, write: write, read: read)
        return name
    }

    static func with(_ kind: Kind, _ body: (PermissionBroker) async throws -> Void) async throws {
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let vhost = "conductor-perm-\(run)"
        switch kind {
        case .ours:
            var configuration = BrokerConfiguration(
                port: 0, vhosts: ["/", vhost],
                permissions: [BrokerPermission(user: "guest", vhost: "/"), BrokerPermission(user: "guest", vhost: vhost)])
            configuration.admin = AdminConfiguration(port: 0)
            let broker = try await TestBroker.start(configuration)
            do {
                let admin = BrokerAdminClient(port: try #require(broker.server.adminPort))
                try await body(PermissionBroker(kind: kind, admin: admin, amqpHost: "127.0.0.1", amqpPort: broker.port, vhost: vhost, run: run))
            } catch {
                try? await broker.stop()
                throw error
            }
            try await broker.stop()
        case .rabbitMQ:
            let amqp = try #require(RabbitMQEnvironment.url.flatMap { URLComponents(string: $0) }, "CONDUCTOR_RABBITMQ_URL")
            let admin = try BrokerAdminClient(url: try #require(RabbitMQEnvironment.managementURL, "CONDUCTOR_RABBITMQ_MGMT_URL"))
            let broker = PermissionBroker(
                kind: kind, admin: admin, amqpHost: amqp.host ?? "127.0.0.1", amqpPort: amqp.port ?? 5672, vhost: vhost, run: run)
            let created = try await admin.request(.PUT, BrokerAdminClient.path("vhosts", vhost), body: Array("{}".utf8))
            try #require((200..<300).contains(created.status), "creating vhost \(vhost) on RabbitMQ: \(created.status) \(created.text)")
            try await admin.setPermissions(user: "guest", vhost: vhost, configure: ".*", write: ".*", read: ".*")
            do {
                try await body(broker)
            } catch {
                await broker.removeRabbitMQLeftovers()
                throw error
            }
            await broker.removeRabbitMQLeftovers()
        }
    }

    /// The run's vhost (with its queues, exchanges and permissions) and users.
    private func removeRabbitMQLeftovers() async {
        _ = try? await self.admin.request(.DELETE, BrokerAdminClient.path("vhosts", self.vhost))
        guard let listing = try? await self.admin.request(.GET, BrokerAdminClient.path("users")),
            let users = try? JSONSerialization.jsonObject(with: Data(listing.body)) as? [[String: Any]]
        else { return }
        for case let name as String in users.map({ $0["name"] }) where name.hasSuffix("-\(self.run)") {
            _ = try? await self.admin.deleteUser(name)
        }
    }
}

/// Expectations on what a broker allows a connection to do.
enum Permitted {
    /// Runs `operation` on a new channel: nil when the broker let it through, else the error
    /// the broker closed the channel with.
    static func outcome(_ connection: AMQPConnection, _ operation: (AMQPChannel) async throws -> Void) async throws -> AMQPError? {
        let channel = try await connection.openChannel()
        do {
            try await operation(channel)
        } catch let error as AMQPError where error.code == .channelClosed && error.replyCode != nil {
            return error
        }
        try? await channel.close()
        return nil
    }

    static func expectAllowed(
        _ what: String, _ connection: AMQPConnection, sourceLocation: SourceLocation = #_sourceLocation,
        _ operation: (AMQPChannel) async throws -> Void
    ) async throws {
        let refusal = try await Self.outcome(connection, operation)
        #expect(refusal == nil, "\(what): \(refusal.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    }

    /// 403 ACCESS_REFUSED naming `resource` ("queue 'q'", "exchange 'x'", "topic 'key' in
    /// exchange 'x'"), the vhost and the user. The wording before "access" differs: newer
    /// RabbitMQ and ours say which permission ("write access to ..."), RabbitMQ 3.10 does not.
    static func expectRefused(
        _ what: String, _ connection: AMQPConnection, resource: String, on broker: PermissionBroker, user: String,
        sourceLocation: SourceLocation = #_sourceLocation, _ operation: (AMQPChannel) async throws -> Void
    ) async throws {
        let refusal = try await Self.outcome(connection, operation)
        #expect(refusal?.replyCode == 403, "\(what): \(refusal.map { "\($0)" } ?? "allowed")", sourceLocation: sourceLocation)
        let expected = "access to \(resource) in vhost '\(broker.vhost)' refused for user '\(user)'"
        #expect(refusal?.message.contains(expected) == true, "\(what): \(refusal?.message ?? "allowed"), expected '\(expected)'", sourceLocation: sourceLocation)
    }

    /// 403 with exactly this text after "ACCESS_REFUSED - " (refusals that name no permission).
    static func expectRefused(
        _ what: String, _ connection: AMQPConnection, text: String,
        sourceLocation: SourceLocation = #_sourceLocation, _ operation: (AMQPChannel) async throws -> Void
    ) async throws {
        let refusal = try await Self.outcome(connection, operation)
        #expect(refusal?.replyCode == 403, "\(what): \(refusal.map { "\($0)" } ?? "allowed")", sourceLocation: sourceLocation)
        #expect(refusal?.message.hasSuffix("ACCESS_REFUSED - \(text)") == true, "\(what): \(refusal?.message ?? "allowed")", sourceLocation: sourceLocation)
    }

    /// A publish that waits for its confirm, so a refusal closes the channel before it returns.
    static func publish(_ channel: AMQPChannel, exchange: String, routingKey: String) async throws {
        try await channel.confirmSelect()
        try await channel.publishConfirmed("x", exchange: exchange, routingKey: routingKey)
    }
}
