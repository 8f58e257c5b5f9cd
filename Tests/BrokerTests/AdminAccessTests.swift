import AMQPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Broker

/// Permissions and topic permissions through the admin API: RabbitMQ management's paths
/// and JSON, kept in users.json and read from definitions; and `BrokerAdminClient`'s
/// errors. (What they allow over AMQP: PermissionTests.)
@Suite(.timeLimit(.minutes(1)))
struct AdminAccessTests {
    static func json(_ response: BrokerAdminClient.Response) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(response.body))
    }

    @Test func topicPermissionsAPIHasRabbitMQsShapes() async throws {
        try await AdminTests.withAdminBroker { _, admin in
            try await admin.createUser("web-1", password: "pw", tags: [])
            let body = Array(#"{"exchange": "qmf.default.topic", "write": "^agent\\.ind\\.", "read": ""}"#.utf8)
            let created = try await admin.request(.PUT, "/api/topic-permissions/%2F/web-1", body: body)
            #expect(created.status == 201, "\(created.text)")
            let replaced = try await admin.request(.PUT, "/api/topic-permissions/%2F/web-1", body: Array(#"{"exchange": "qmf.default.topic", "write": "^agent\\.", "read": ""}"#.utf8))
            #expect(replaced.status == 200)
            try await admin.setTopicPermissions(user: "web-1", exchange: "amq.topic", write: ".*", read: "^$")

            let expected: [[String: String]] = [
                ["user": "web-1", "vhost": "/", "exchange": "amq.topic", "write": ".*", "read": "^$"],
                ["user": "web-1", "vhost": "/", "exchange": "qmf.default.topic", "write": #"^agent\."#, "read": ""],
            ]
            for path in ["/api/topic-permissions", "/api/topic-permissions/%2F/web-1", "/api/users/web-1/topic-permissions"] {
                let listed = try await admin.request(.GET, path)
                #expect(listed.status == 200)
                #expect(Self.json(listed) as? [[String: String]] == expected, "\(path): \(listed.text)")
            }
            #expect(try await admin.topicPermissions(user: "web-1", vhost: "/").map(\.exchange) == ["amq.topic", "qmf.default.topic"])

            // DELETE takes all of the user's entries in the vhost; then there are none (404).
            let cleared = try await admin.call(.DELETE, "/api/topic-permissions/%2F/web-1", as: AdminAPI.Cleared.self)
            #expect(cleared == AdminAPI.Cleared(removed: 2, persisted: false))
            #expect(try await admin.request(.GET, "/api/topic-permissions/%2F/web-1").status == 404)
            #expect(try await admin.request(.DELETE, "/api/topic-permissions/%2F/web-1").status == 404)
            #expect(try await admin.topicPermissions(user: "web-1", vhost: "/").isEmpty)
            #expect((Self.json(try await admin.request(.GET, "/api/topic-permissions")) as? [Any])?.isEmpty == true)

            // Refusals: a pattern that does not compile (also once {username} is filled in),
            // no exchange, an unknown user or vhost.
            for (path, body, status) in [
                ("/api/topic-permissions/%2F/web-1", #"{"exchange": "x", "write": "(", "read": ""}"#, 400),
                ("/api/topic-permissions/%2F/web-1", #"{"write": "", "read": ""}"#, 400),
                ("/api/topic-permissions/%2F/nobody", #"{"exchange": "x", "write": "", "read": ""}"#, 404),
                ("/api/topic-permissions/nowhere/web-1", #"{"exchange": "x", "write": "", "read": ""}"#, 404),
            ] {
                let refused = try await admin.request(.PUT, path, body: Array(body.utf8))
                #expect(refused.status == status, "\(path) \(body): \(refused.text)")
            }
            #expect(try await admin.request(.GET, "/api/users/nobody/topic-permissions").status == 404)
        }
    }

    @Test func permissionsCanBeListedAndCleared() async throws {
        try await AdminTests.withAdminBroker { port, admin in
            try await admin.createUser("db-1", password: "pw")
            try await admin.setPermissions(user: "db-1", configure: "^db$", write: ".*", read: "")
            let one = try await admin.request(.GET, "/api/permissions/%2F/db-1")
            #expect(Self.json(one) as? [String: String] == ["user": "db-1", "vhost": "/", "configure": "^db$", "write": ".*", "read": ""])
            let all = try await admin.call(.GET, "/api/permissions", as: [AdminAPI.Permission].self)
            #expect(all.map(\.user) == ["db-1", "guest"])
            let mine = try await admin.call(.GET, "/api/users/db-1/permissions", as: [AdminAPI.Permission].self)
            #expect(mine == [AdminAPI.Permission(user: "db-1", vhost: "/", configure: "^db$", write: ".*", read: "")])
            try await AMQPConnection.connect(url: "amqp://db-1:pw@127.0.0.1:\(port)/%2F").close()
            try await admin.clearPermissions(user: "db-1")
            #expect(try await admin.request(.GET, "/api/permissions/%2F/db-1").status == 404)
            // No permission in the vhost: connection.open is refused (530).
            await #expect {
                try await AMQPConnection.connect(url: "amqp://db-1:pw@127.0.0.1:\(port)/%2F")
            } throws: { error in
                (error as? AMQPError)?.replyCode == 530
            }
            await #expect {
                try await admin.clearPermissions(user: "db-1")
            } throws: { error in
                (error as? BrokerAdminClientError)?.code == .notFound
            }
        }
    }

    /// RabbitMQ's user body (`tags`, a string or a list) as well as ours (`administrator`).
    @Test func usersTakeRabbitMQsTags() async throws {
        try await AdminTests.withAdminBroker { _, admin in
            try await admin.createUser("ops", password: "pw", tags: ["administrator"])
            let listList = try await admin.request(.PUT, "/api/users/viewer", body: Array(#"{"password": "pw", "tags": ["management"]}"#.utf8))
            #expect(listList.status == 201)
            let users = try await admin.call(.GET, "/api/users", as: [AdminAPI.UserInfo].self)
            #expect(users.first { $0.name == "ops" }?.administrator == true)
            #expect(users.first { $0.name == "viewer" }?.administrator == false)
            #expect(try await BrokerAdminClient(port: admin.port, username: "ops", password: "pw").request(.GET, "/api/users").status == 200)
            #expect(try await BrokerAdminClient(port: admin.port, username: "viewer", password: "pw").request(.GET, "/api/users").status == 401)
        }
    }

    @Test func topicPermissionsSurviveARestartAndAreDefinitions() async throws {
        let directory = try PersistenceRestartTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await AdminTests.withPersistentAdminBroker(directory: directory) { _, admin in
            try await admin.createUser("web-1", password: "pw")
            try await admin.setPermissions(user: "web-1", configure: ".*", write: ".*", read: ".*")
            let change = try await admin.setTopicPermissions(user: "web-1", exchange: "qmf.default.topic", write: #"^agent\.{username}\."#, read: "^$")
            #expect(change.persisted == true)
        }
        let path = directory + "/users.json"
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        #expect(stored?["topic_permissions"] as? [[String: String]] == [
            ["user": "web-1", "vhost": "/", "exchange": "qmf.default.topic", "write": #"^agent\.{username}\."#, "read": "^$"],
        ])
        let definitions = try BrokerConfiguration.load(definitionsFile: path)
        #expect(definitions.topicPermissions == [
            BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "qmf.default.topic", write: #"^agent\.{username}\."#, read: "^$"),
        ])
        try await AdminTests.withPersistentAdminBroker(directory: directory) { port, admin in
            #expect(try await admin.topicPermissions(user: "web-1").map(\.write) == [#"^agent\.{username}\."#])
            let connection = try await AMQPConnection.connect(url: "amqp://web-1:pw@127.0.0.1:\(port)/%2F")
            let channel = try await connection.openChannel()
            try await channel.confirmSelect()
            try await channel.exchangeDeclare(name: "qmf.default.topic", type: "topic", passive: false, durable: true)
            await #expect {
                try await channel.publishConfirmed("x", exchange: "qmf.default.topic", routingKey: "agent.web-2.x")
            } throws: { error in
                (error as? AMQPError)?.replyCode == 403
            }
            try? await connection.close()
            // Deleting the user takes its topic permissions out of the file too.
            try await admin.deleteUser("web-1")
        }
        let after = try BrokerConfiguration.load(definitionsFile: path)
        #expect(after.topicPermissions.isEmpty)
    }

    @Test func definitionsGiveTopicPermissions() async throws {
        let directory = try PersistenceRestartTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/definitions.json"
        try Data(#"""
            {"users": [{"name": "web-1", "password": "pw"}], "vhosts": [{"name": "/"}],
             "permissions": [{"user": "web-1", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
             "topic_permissions": [{"user": "web-1", "vhost": "/", "exchange": "amq.topic", "write": "^a$", "read": ""}]}
            """#.utf8).write(to: URL(fileURLWithPath: path))
        let configuration = try BrokerConfiguration.load(definitionsFile: path)
        #expect(configuration.topicPermissions == [BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "amq.topic", write: "^a$", read: "")])
        try Data(#"{"topic_permissions": [{"user": "web-1", "write": ""}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect {
            try BrokerConfiguration.load(definitionsFile: path)
        } throws: { error in
            "\(error)".contains("topic_permissions[0] needs user, vhost and exchange")
        }
    }

    // MARK: - The client's errors

    @Test func clientErrorsSayWhatWentWrong() async throws {
        try await AdminTests.withAdminBroker { _, admin in
            await #expect {
                try await BrokerAdminClient(port: admin.port, username: "guest", password: "wrong").createUser("x", password: "y")
            } throws: { error in
                let error = error as? BrokerAdminClientError
                return error?.code == .unauthorized && error?.status == 401 && "\(error!)".contains("PUT /api/users/x on http://127.0.0.1:\(admin.port)")
            }
            await #expect {
                try await admin.deleteUser("nobody")
            } throws: { error in
                (error as? BrokerAdminClientError)?.code == .notFound && "\(error)".contains("no user 'nobody'")
            }
            await #expect {
                try await admin.setTopicPermissions(user: "guest", exchange: "x", write: "(", read: "")
            } throws: { error in
                (error as? BrokerAdminClientError)?.code == .badRequest && "\(error)".contains("invalid regular expression '('")
            }
        }
        // Nothing listens: unreachable, naming the endpoint.
        let closedPort = try await Self.freePort()
        await #expect {
            try await BrokerAdminClient(port: closedPort).createUser("x", password: "y")
        } throws: { error in
            (error as? BrokerAdminClientError)?.code == .unreachable && "\(error)".contains("cannot reach the admin API at http://127.0.0.1:\(closedPort)")
        }
    }

    @Test func aSilentServerTimesOut() async throws {
        // Accepts connections and never answers.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(silent.localAddress?.port)
        await #expect {
            try await BrokerAdminClient(port: port, timeout: .seconds(1)).deleteUser("x")
        } throws: { error in
            (error as? BrokerAdminClientError)?.code == .timedOut && "\(error)".contains("DELETE /api/users/x")
        }
        try await silent.close()
    }

    @Test func urlsGiveEndpointAndCredentials() throws {
        let client = try BrokerAdminClient(url: "http://ops:p%40ss@127.0.0.1:15673")
        #expect(client.host == "127.0.0.1" && client.port == 15673 && client.username == "ops" && client.password == "p@ss")
        let defaults = try BrokerAdminClient(url: "http://localhost")
        #expect(defaults.port == 15672 && defaults.username == "guest" && defaults.password == "guest")
        #expect(throws: BrokerAdminClientError.self) { try BrokerAdminClient(url: "https://127.0.0.1:15671") }
        #expect(throws: BrokerAdminClientError.self) { try BrokerAdminClient(url: "not a url") }
        #expect(BrokerAdminClient.path("topic-permissions", "/", "web-1") == "/api/topic-permissions/%2F/web-1")
    }

    /// A port nothing listens on (bound, read, released).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}
