import AMQPClient
import Foundation
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
            // Without a data directory the change lives in memory only, and the answer says so.
            #expect(added == AdminAPI.UserInfo(name: "alice", administrator: false, persisted: false))
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

    /// A broker with a data directory and the admin API, stopped at the end of `body`.
    static func withPersistentAdminBroker(
        directory: String, configuration base: BrokerConfiguration = BrokerConfiguration(port: 0),
        _ body: (_ amqpPort: Int, _ admin: BrokerAdminClient) async throws -> Void
    ) async throws {
        var configuration = base
        configuration.dataDirectory = directory
        configuration.admin = AdminConfiguration(port: 0)
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        let port = try await server.start()
        do {
            try await body(port, BrokerAdminClient(port: try #require(server.adminPort)))
        } catch {
            try? await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    static func expectRefused(_ url: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        await #expect(sourceLocation: sourceLocation) {
            try await AMQPConnection.connect(url: url)
        } throws: { error in
            (error as? AMQPError)?.code == .authenticationFailed && (error as? AMQPError)?.replyCode == 403
        }
    }

    @Test func userChangesSurviveARestart() async throws {
        let directory = try PersistenceRestartTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.withPersistentAdminBroker(directory: directory) { port, admin in
            let dora = try await admin.call(.PUT, "/api/users/dora", body: AdminAPI.encode(AdminAPI.NewUser(password: "d0ra", administrator: true)), as: AdminAPI.UserInfo.self)
            #expect(dora == AdminAPI.UserInfo(name: "dora", administrator: true, persisted: true))
            let granted = try await admin.call(.PUT, "/api/permissions/%2F/dora", body: AdminAPI.encode(AdminAPI.Permission(configure: "^dora\\.", write: ".*", read: ".*")), as: AdminAPI.Permission.self)
            #expect(granted.persisted == true)
            _ = try await admin.call(.PUT, "/api/users/eve", body: AdminAPI.encode(AdminAPI.NewUser(password: "3ve", administrator: false)), as: AdminAPI.UserInfo.self)
            _ = try await admin.call(.PUT, "/api/permissions/%2F/eve", body: AdminAPI.encode(AdminAPI.Permission(configure: ".*", write: ".*", read: ".*")), as: AdminAPI.Permission.self)
            try await AMQPConnection.connect(url: "amqp://eve:3ve@127.0.0.1:\(port)/%2F").close()
            _ = try await admin.call(.DELETE, "/api/users/eve", as: AdminAPI.UserInfo.self)
            // The built-in guest only seeded the directory: deleted (by dora), it stays deleted.
            let asDora = BrokerAdminClient(port: admin.port, username: "dora", password: "d0ra")
            _ = try await asDora.call(.DELETE, "/api/users/guest", as: AdminAPI.UserInfo.self)
        }

        // On disk: owner-only, no password in clear, a RabbitMQ definitions document.
        let path = directory + "/users.json"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("d0ra"))
        #expect(text.contains("rabbit_password_hashing_sha256"))
        let definitions = try BrokerConfiguration.load(definitionsFile: path)
        #expect(definitions.users.map(\.name) == ["dora"])
        #expect(definitions.users.first?.verify(password: "d0ra") == true)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))

        try await Self.withPersistentAdminBroker(directory: directory) { port, admin in
            let connection = try await AMQPConnection.connect(url: "amqp://dora:d0ra@127.0.0.1:\(port)/%2F")
            let channel = try await connection.openChannel()
            _ = try await channel.queueDeclare(name: "dora.inbox")
            // Her permissions came back as set, not as full access.
            await #expect {
                _ = try await channel.queueDeclare(name: "other.inbox")
            } throws: { error in
                (error as? AMQPError)?.replyCode == 403
            }
            try? await connection.close()
            await Self.expectRefused("amqp://eve:3ve@127.0.0.1:\(port)/%2F")
            await Self.expectRefused("amqp://guest:guest@127.0.0.1:\(port)/%2F")
            // dora is still an administrator; guest is not a user any more.
            let asDora = BrokerAdminClient(port: admin.port, username: "dora", password: "d0ra")
            let users = try await asDora.call(.GET, "/api/users", as: [AdminAPI.UserInfo].self)
            #expect(users == [AdminAPI.UserInfo(name: "dora", administrator: true)])
        }
    }

    /// Users the configuration names are applied at every start, over what is stored.
    @Test func configuredUsersWinOverStoredOnes() async throws {
        let directory = try PersistenceRestartTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configured = BrokerConfiguration(
            port: 0, users: [BrokerUser(name: "ops", password: "first")], permissions: [BrokerPermission(user: "ops", vhost: "/")])
        try await Self.withPersistentAdminBroker(directory: directory, configuration: configured) { port, admin in
            let ops = BrokerAdminClient(port: admin.port, username: "ops", password: "first")
            _ = try await ops.call(.PUT, "/api/users/ops", body: AdminAPI.encode(AdminAPI.NewUser(password: "second", administrator: true)), as: AdminAPI.UserInfo.self)
            let opsNow = BrokerAdminClient(port: admin.port, username: "ops", password: "second")
            _ = try await opsNow.call(.PUT, "/api/users/kim", body: AdminAPI.encode(AdminAPI.NewUser(password: "k1m", administrator: false)), as: AdminAPI.UserInfo.self)
            _ = try await opsNow.call(.PUT, "/api/permissions/%2F/kim", body: AdminAPI.encode(AdminAPI.Permission(configure: "", write: "", read: ".*")), as: AdminAPI.Permission.self)
            try await AMQPConnection.connect(url: "amqp://ops:second@127.0.0.1:\(port)/%2F").close()
        }
        try await Self.withPersistentAdminBroker(directory: directory, configuration: configured) { port, _ in
            // ops is configured: its configured password is back; kim was only stored and stays.
            try await AMQPConnection.connect(url: "amqp://ops:first@127.0.0.1:\(port)/%2F").close()
            await Self.expectRefused("amqp://ops:second@127.0.0.1:\(port)/%2F")
            try await AMQPConnection.connect(url: "amqp://kim:k1m@127.0.0.1:\(port)/%2F").close()
        }
    }

    @Test func unreadableUsersFileFailsTheStart() async throws {
        let directory = try PersistenceRestartTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("{\"users\": 42}".utf8).write(to: URL(fileURLWithPath: directory + "/users.json"))
        var configuration = BrokerConfiguration(port: 0)
        configuration.dataDirectory = directory
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        await #expect {
            try await server.start()
        } throws: { error in
            "\(error)".contains(directory + "/users.json")
        }
        // Nothing was left running or locked: a broker can start there once the file is gone.
        try FileManager.default.removeItem(atPath: directory + "/users.json")
        try await Self.withPersistentAdminBroker(directory: directory) { port, _ in
            try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F").close()
        }
    }

    @Test func aChangeThatCannotBeSavedIsAnsweredWithAnError() async throws {
        let directory = try PersistenceRestartTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The temporary file's name is taken by a directory: the write fails.
        try FileManager.default.createDirectory(atPath: directory + "/users.json.tmp", withIntermediateDirectories: false)
        try await Self.withPersistentAdminBroker(directory: directory) { _, admin in
            let response = try await admin.request(.PUT, "/api/users/fay", body: AdminAPI.encode(AdminAPI.NewUser(password: "f", administrator: false)))
            #expect(response.status == 500)
            #expect(response.text.contains(directory + "/users.json"), "\(response.text)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/users.json"))
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
