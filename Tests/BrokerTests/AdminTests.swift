import AMQPClient
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import Broker

/// The admin HTTP API against a running broker over loopback: listings reflect what
/// AMQP clients did, changes take effect for AMQP clients, and it refuses strangers.
@Suite(.timeLimit(.minutes(1)))
struct AdminTests {
    static func withAdminBroker(_ body: (_ amqpPort: Int, _ admin: BrokerAdminClient) async throws -> Void) async throws {
        var configuration = BrokerConfiguration(port: 0)
        configuration.admin = AdminConfiguration(port: 0)
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        let port = try await server.start()
        let adminPort = try #require(server.adminPort)
        do {
            try await body(port, BrokerAdminClient(port: adminPort))
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    @Test func listingsShowWhatClientsDid() async throws {
        try await Self.withAdminBroker { port, admin in
            let connection = try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F")
            let channel = try await connection.openChannel()
            try await channel.exchangeDeclare(name: "events", type: "topic")
            _ = try await channel.queueDeclare(name: "audit", durable: true)
            try await channel.queueBind(queue: "audit", exchange: "events", routingKey: "user.*")
            for index in 0..<3 { _ = try channel.publish("\(index)", exchange: "events", routingKey: "user.created") }
            let consumerChannel = try await connection.openChannel()
            try await consumerChannel.basicQos(prefetchCount: 1)
            _ = try await consumerChannel.consume(queue: "audit")

            // Bounded wait: 1 delivered and unacked (prefetch 1), 2 ready.
            var audit: AdminAPI.QueueInfo?
            for _ in 0..<100 {
                audit = try await admin.call(.GET, "/api/queues", as: [AdminAPI.QueueInfo].self).first { $0.name == "audit" }
                if audit?.messagesReady == 2, audit?.messagesUnacknowledged == 1 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(audit == AdminAPI.QueueInfo(
                vhost: "/", name: "audit", durable: true, autoDelete: false, exclusive: false,
                messagesReady: 2, messagesUnacknowledged: 1, consumers: 1))

            let exchanges = try await admin.call(.GET, "/api/exchanges", as: [AdminAPI.ExchangeInfo].self)
            #expect(exchanges.contains { $0.name == "events" && $0.type == "topic" && !$0.durable })
            #expect(exchanges.contains { $0.name == "amq.direct" })

            let bindings = try await admin.call(.GET, "/api/bindings", as: [AdminAPI.BindingInfo].self)
            #expect(bindings.contains(AdminAPI.BindingInfo(vhost: "/", source: "events", destination: "audit", destinationType: "queue", routingKey: "user.*")))
            #expect(bindings.contains(AdminAPI.BindingInfo(vhost: "/", source: "", destination: "audit", destinationType: "queue", routingKey: "audit")))

            let connections = try await admin.call(.GET, "/api/connections", as: [AdminAPI.ConnectionInfo].self)
            #expect(connections.count == 1)
            #expect(connections.first?.user == "guest")
            #expect(connections.first?.channels == 2)
            #expect(connections.first?.messagesPublished == 3)
            #expect(connections.first?.clientProduct == "Conductor AMQPClient")
            #expect(connections.first?.tls == false)

            let channels = try await admin.call(.GET, "/api/channels", as: [AdminAPI.ChannelInfo].self)
            #expect(channels.map(\.number) == [1, 2])
            #expect(channels.map(\.consumers) == [0, 1])
            #expect(channels.map(\.messagesUnacknowledged) == [0, 1])
            try await connection.close()
        }
    }

    @Test func purgeAndDeleteQueues() async throws {
        try await Self.withAdminBroker { port, admin in
            let connection = try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F")
            let channel = try await connection.openChannel()
            _ = try await channel.queueDeclare(name: "work")
            try await channel.confirmSelect()
            for _ in 0..<5 { try await channel.publishConfirmed("job", routingKey: "work") }
            let purged = try await admin.call(.DELETE, "/api/queues/%2F/work/contents", as: AdminAPI.Purged.self)
            #expect(purged.messages == 5)
            #expect(try await channel.queueDeclare(name: "work", passive: true).messageCount == 0)

            let deleted = try await admin.call(.DELETE, "/api/queues/%2F/work", as: AdminAPI.Purged.self)
            #expect(deleted.messages == 0)
            await #expect(throws: AMQPError.self) { _ = try await channel.queueDeclare(name: "work", passive: true) }
            // Deleting it again: 404 with a message.
            await #expect {
                _ = try await admin.call(.DELETE, "/api/queues/%2F/work", as: AdminAPI.Purged.self)
            } throws: { error in
                (error as? BrokerAdminClientError)?.status == 404 && "\(error)".contains("no queue 'work'")
            }
            try? await connection.close()
        }
    }

    @Test func usersAndPermissionsTakeEffectForNewConnections() async throws {
        try await Self.withAdminBroker { port, admin in
            let url = "amqp://alice:s3cret@127.0.0.1:\(port)/%2F"
            // Unknown user: refused.
            await #expect(throws: AMQPError.self) { try await AMQPConnection.connect(url: url) }
            let added = try await admin.call(.PUT, "/api/users/alice", body: AdminAPI.encode(AdminAPI.NewUser(password: "s3cret", administrator: false)), as: AdminAPI.UserInfo.self)
            #expect(added == AdminAPI.UserInfo(name: "alice", administrator: false))
            // Known, but no permission on the vhost: 530 at connection.open.
            await #expect(throws: AMQPError.self) { try await AMQPConnection.connect(url: url) }
            _ = try await admin.call(.PUT, "/api/permissions/%2F/alice", body: AdminAPI.encode(AdminAPI.Permission(configure: "^alice\\.", write: "^$", read: ".*")), as: AdminAPI.Permission.self)
            let connection = try await AMQPConnection.connect(url: url)
            let channel = try await connection.openChannel()
            _ = try await channel.queueDeclare(name: "alice.inbox")
            // Configure is limited to alice.*: 403 on another name.
            await #expect {
                _ = try await channel.queueDeclare(name: "bob.inbox")
            } throws: { error in
                (error as? AMQPError)?.replyCode == 403
            }
            // alice is no administrator: the API refuses her.
            let refused = try await BrokerAdminClient(port: admin.port, username: "alice", password: "s3cret").request(.GET, "/api/queues")
            #expect(refused.status == 401)
            // Deleting her closes her connection (320) and refuses new ones.
            _ = try await admin.call(.DELETE, "/api/users/alice", as: AdminAPI.UserInfo.self)
            var closed = false
            for _ in 0..<100 {
                if !connection.isConnected { closed = true; break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(closed)
            await #expect(throws: AMQPError.self) { try await AMQPConnection.connect(url: url) }
            try? await connection.close()
        }
    }

    @Test func strangersAndBadRequestsAreRefused() async throws {
        try await Self.withAdminBroker { _, admin in
            let anonymous = try await admin.request(.GET, "/api/queues", body: nil)
            #expect(anonymous.status == 200, "guest is the default administrator")
            let wrong = try await BrokerAdminClient(port: admin.port, username: "guest", password: "nope").request(.GET, "/api/queues")
            #expect(wrong.status == 401)
            #expect(wrong.text.contains("basic authentication"))
            let unknown = try await admin.request(.GET, "/api/nothing")
            #expect(unknown.status == 404)
            let badBody = try await admin.request(.PUT, "/api/users/carol", body: Array("not json".utf8))
            #expect(badBody.status == 400)
            let badPattern = try await admin.request(.PUT, "/api/permissions/%2F/guest", body: AdminAPI.encode(AdminAPI.Permission(configure: "(", write: "", read: "")))
            #expect(badPattern.status == 400)
            let noVhost = try await admin.request(.PUT, "/api/permissions/nowhere/guest", body: AdminAPI.encode(AdminAPI.Permission(configure: "", write: "", read: "")))
            #expect(noVhost.status == 404)
        }
    }
}

extension BrokerAdminClient {
    func request(_ method: HTTPMethod, _ path: String) async throws -> Response {
        try await self.request(method, path, body: nil)
    }
}
