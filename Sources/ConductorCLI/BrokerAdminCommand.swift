import ArgumentParser
import Broker
import Foundation
import NIOHTTP1

/// `conductor broker list-queues` and friends: rabbitmqctl-style administration of a
/// running `conductor broker --http-port PORT` through its admin HTTP API.
enum BrokerAdminCommands {
    static let all: [any ParsableCommand.Type] = [
        ListQueues.self, ListExchanges.self, ListBindings.self, ListConnections.self, ListChannels.self, ListUsers.self,
        AddUser.self, DeleteUser.self, SetPermissions.self, SetTopicPermissions.self, ClearTopicPermissions.self,
        ListTopicPermissions.self, PurgeQueue.self, DeleteQueue.self,
    ]

    static let discussion = """
        Talks to the admin API of a broker started with --http-port (HTTP basic auth as an \
        administrator: by default any user the broker started with, e.g. guest from loopback). \
        Exit status: 0 done, 1 the broker refused or could not be reached, 64 bad arguments.
        """

    static let persistence = """
         The broker saves the change in its data directory (users.json) before answering, so it \
        survives a restart; users given to the broker with --user or --definitions get their \
        configured password and permissions back at every start. A broker run with \
        --no-persistence keeps the change in memory only (a note on stderr says so).
        """
}

/// Where the admin API is and who asks.
struct AdminOptions: ParsableArguments {
    @Option(name: .long, help: "The broker's admin API, HOST:PORT (the broker's --http-host/--http-port).")
    var http: String = "127.0.0.1:15672"

    @Option(name: .long, help: "Administrator user name.")
    var adminUser: String = "guest"

    @Option(name: .long, help: "Its password (default: $CONDUCTOR_BROKER_ADMIN_PASSWORD, else guest).")
    var adminPassword: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard BrokerCommand.parseListen(self.http) != nil else {
            throw ValidationError("--http must be HOST:PORT, got '\(self.http)'")
        }
    }

    var client: BrokerAdminClient {
        let (host, port) = BrokerCommand.parseListen(self.http)!
        let password = self.adminPassword ?? ProcessInfo.processInfo.environment["CONDUCTOR_BROKER_ADMIN_PASSWORD"] ?? "guest"
        return BrokerAdminClient(host: host == "0.0.0.0" ? "127.0.0.1" : host, port: port, username: self.adminUser, password: password)
    }

    /// Runs an API call; a refusal or an unreachable broker prints the reason and exits 1.
    func call<T: Codable>(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, as type: T.Type) async throws -> T {
        do {
            return try await self.client.call(method, path, body: body, as: type)
        } catch {
            FileHandle.standardError.write(Data("conductor broker: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Prints `rows` as JSON or as an aligned table with `columns` headers.
    func output<T: Encodable>(_ value: T, columns: [String], rows: [[String]]) {
        if self.json {
            print(String(decoding: AdminAPI.encode(value), as: UTF8.self))
            return
        }
        var widths = columns.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(columns))
        for row in rows { print(line(row)) }
    }

    /// A change the broker could not save (it runs without a data directory): say so on stderr.
    func noteIfNotPersisted(_ persisted: Bool?) {
        guard persisted == false else { return }
        FileHandle.standardError.write(Data("conductor broker: note: the broker has no data directory (--no-persistence); this change is lost when it stops\n".utf8))
    }

    static func path(_ parts: String...) -> String {
        "/api/" + parts.map(BrokerAdminClient.segment).joined(separator: "/")
    }

    static let topicPermissionColumns = ["user", "vhost", "exchange", "write", "read"]

    static func row(_ topic: AdminAPI.TopicPermission) -> [String] {
        [topic.user ?? "-", topic.vhost ?? "-", topic.exchange, topic.write, topic.read]
    }
}

extension BrokerAdminCommands {
    struct ListQueues: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-queues", abstract: "List queues: messages ready and unacknowledged, consumers.", discussion: BrokerAdminCommands.discussion)
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let queues = try await self.admin.call(.GET, AdminOptions.path("queues"), as: [AdminAPI.QueueInfo].self)
            self.admin.output(queues, columns: ["vhost", "name", "ready", "unacked", "consumers", "flags"], rows: queues.map {
                let flags = [$0.durable ? "D" : "", $0.autoDelete ? "AD" : "", $0.exclusive ? "excl" : ""].filter { !$0.isEmpty }.joined(separator: ",")
                return [$0.vhost, $0.name, "\($0.messagesReady)", "\($0.messagesUnacknowledged)", "\($0.consumers)", flags]
            })
        }
    }

    struct ListExchanges: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-exchanges", abstract: "List exchanges and their types.", discussion: BrokerAdminCommands.discussion)
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let exchanges = try await self.admin.call(.GET, AdminOptions.path("exchanges"), as: [AdminAPI.ExchangeInfo].self)
            self.admin.output(exchanges, columns: ["vhost", "name", "type", "durable"], rows: exchanges.map {
                [$0.vhost, $0.name, $0.type, "\($0.durable)"]
            })
        }
    }

    struct ListBindings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-bindings", abstract: "List bindings (source exchange, destination, routing key).", discussion: BrokerAdminCommands.discussion)
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let bindings = try await self.admin.call(.GET, AdminOptions.path("bindings"), as: [AdminAPI.BindingInfo].self)
            self.admin.output(bindings, columns: ["vhost", "source", "destination", "type", "routing_key"], rows: bindings.map {
                [$0.vhost, $0.source.isEmpty ? "(default)" : $0.source, $0.destination, $0.destinationType, $0.routingKey]
            })
        }
    }

    struct ListConnections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-connections", abstract: "List client connections: peer, user, vhost, TLS, state, channels.", discussion: BrokerAdminCommands.discussion)
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let connections = try await self.admin.call(.GET, AdminOptions.path("connections"), as: [AdminAPI.ConnectionInfo].self)
            self.admin.output(connections, columns: ["peer", "user", "vhost", "tls", "state", "channels", "published", "delivered"], rows: connections.map {
                [$0.peer, $0.user ?? "-", $0.vhost ?? "-", $0.tls ? "yes" : "no", $0.state, "\($0.channels)", "\($0.messagesPublished)", "\($0.messagesDelivered)"]
            })
        }
    }

    struct ListChannels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-channels", abstract: "List channels: connection, number, consumers, unacknowledged, mode.", discussion: BrokerAdminCommands.discussion)
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let channels = try await self.admin.call(.GET, AdminOptions.path("channels"), as: [AdminAPI.ChannelInfo].self)
            self.admin.output(channels, columns: ["connection", "number", "user", "consumers", "unacked", "mode"], rows: channels.map {
                [$0.connection, "\($0.number)", $0.user ?? "-", "\($0.consumers)", "\($0.messagesUnacknowledged)", $0.mode]
            })
        }
    }

    struct ListUsers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-users", abstract: "List users and whether they may use the admin API.", discussion: BrokerAdminCommands.discussion)
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let users = try await self.admin.call(.GET, AdminOptions.path("users"), as: [AdminAPI.UserInfo].self)
            self.admin.output(users, columns: ["name", "administrator"], rows: users.map { [$0.name, "\($0.administrator)"] })
        }
    }

    struct AddUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-user",
            abstract: "Add a user (or change its password). It needs set-permissions before it can open a vhost.",
            discussion: BrokerAdminCommands.discussion + BrokerAdminCommands.persistence)
        @Argument(help: "User name.") var name: String
        @Argument(help: "Password.") var password: String
        @Flag(name: .long, help: "Allow the user to use the admin API.") var administrator = false
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let body = AdminAPI.encode(AdminAPI.NewUser(password: self.password, administrator: self.administrator))
            let user = try await self.admin.call(.PUT, AdminOptions.path("users", self.name), body: body, as: AdminAPI.UserInfo.self)
            self.admin.output(user, columns: ["added"], rows: [[user.name]])
            self.admin.noteIfNotPersisted(user.persisted)
        }
    }

    struct DeleteUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-user", abstract: "Delete a user; its open connections are closed (320 CONNECTION_FORCED).",
            discussion: BrokerAdminCommands.discussion + BrokerAdminCommands.persistence)
        @Argument(help: "User name.") var name: String
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let user = try await self.admin.call(.DELETE, AdminOptions.path("users", self.name), as: AdminAPI.UserInfo.self)
            self.admin.output(user, columns: ["deleted"], rows: [[user.name]])
            self.admin.noteIfNotPersisted(user.persisted)
        }
    }

    struct SetPermissions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-permissions",
            abstract: "Set a user's configure, write and read permissions (regular expressions) in a vhost.",
            discussion: BrokerAdminCommands.discussion + " As in RabbitMQ, \"\" grants nothing and \".*\" everything. Open connections apply them from their next operation."
                + BrokerAdminCommands.persistence)
        @Argument(help: "User name.") var user: String
        @Argument(help: "Configure pattern.") var configure: String
        @Argument(help: "Write pattern.") var write: String
        @Argument(help: "Read pattern.") var read: String
        @Option(name: .customShort("p"), help: ArgumentHelp("Virtual host (as rabbitmqctl's -p).", valueName: "vhost")) var vhost: String = "/"
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let body = AdminAPI.encode(AdminAPI.Permission(configure: self.configure, write: self.write, read: self.read))
            let permission = try await self.admin.call(.PUT, AdminOptions.path("permissions", self.vhost, self.user), body: body, as: AdminAPI.Permission.self)
            self.admin.output(permission, columns: ["user", "vhost", "configure", "write", "read"], rows: [
                [self.user, self.vhost, permission.configure, permission.write, permission.read],
            ])
            self.admin.noteIfNotPersisted(permission.persisted)
        }
    }

    struct SetTopicPermissions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-topic-permissions",
            abstract: "Limit the routing keys a user may publish with (write) and bind with (read) on a topic exchange.",
            discussion: BrokerAdminCommands.discussion
                + " As RabbitMQ's set_topic_permissions: regular expressions matched against routing keys, \"\" meaning ^$, "
                + "{username} and {vhost} standing for the connection's user and vhost; one entry per exchange (setting it again "
                + "replaces it); a user without one for an exchange may use any routing key there. Open connections apply it "
                + "from their next operation."
                + BrokerAdminCommands.persistence)
        @Argument(help: "User name.") var user: String
        @Argument(help: "Topic exchange name.") var exchange: String
        @Argument(help: "Write pattern (routing keys of publishes).") var write: String
        @Argument(help: "Read pattern (binding keys of queue and exchange bindings).") var read: String
        @Option(name: .customShort("p"), help: ArgumentHelp("Virtual host (as rabbitmqctl's -p).", valueName: "vhost")) var vhost: String = "/"
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let body = AdminAPI.encode(AdminAPI.TopicPermission(exchange: self.exchange, write: self.write, read: self.read))
            let topic = try await self.admin.call(.PUT, AdminOptions.path("topic-permissions", self.vhost, self.user), body: body, as: AdminAPI.TopicPermission.self)
            self.admin.output(topic, columns: AdminOptions.topicPermissionColumns, rows: [AdminOptions.row(topic)])
            self.admin.noteIfNotPersisted(topic.persisted)
        }
    }

    struct ClearTopicPermissions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear-topic-permissions", abstract: "Remove all of a user's topic permissions in a vhost.",
            discussion: BrokerAdminCommands.discussion + BrokerAdminCommands.persistence)
        @Argument(help: "User name.") var user: String
        @Option(name: .customShort("p"), help: ArgumentHelp("Virtual host (as rabbitmqctl's -p).", valueName: "vhost")) var vhost: String = "/"
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let cleared = try await self.admin.call(.DELETE, AdminOptions.path("topic-permissions", self.vhost, self.user), as: AdminAPI.Cleared.self)
            self.admin.output(cleared, columns: ["user", "vhost", "removed"], rows: [[self.user, self.vhost, "\(cleared.removed)"]])
            self.admin.noteIfNotPersisted(cleared.persisted)
        }
    }

    struct ListTopicPermissions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-topic-permissions", abstract: "List topic permissions: user, vhost, exchange, write and read patterns.",
            discussion: BrokerAdminCommands.discussion)
        @Option(name: .customShort("p"), help: ArgumentHelp("Only this virtual host (default: all).", valueName: "vhost")) var vhost: String?
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            var topics = try await self.admin.call(.GET, AdminOptions.path("topic-permissions"), as: [AdminAPI.TopicPermission].self)
            if let vhost = self.vhost { topics.removeAll { $0.vhost != vhost } }
            self.admin.output(topics, columns: AdminOptions.topicPermissionColumns, rows: topics.map(AdminOptions.row))
        }
    }

    struct PurgeQueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge-queue", abstract: "Remove a queue's ready messages.", discussion: BrokerAdminCommands.discussion)
        @Argument(help: "Queue name.") var name: String
        @Option(name: .customShort("p"), help: ArgumentHelp("Virtual host (as rabbitmqctl's -p).", valueName: "vhost")) var vhost: String = "/"
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let purged = try await self.admin.call(.DELETE, AdminOptions.path("queues", self.vhost, self.name, "contents"), as: AdminAPI.Purged.self)
            self.admin.output(purged, columns: ["queue", "purged"], rows: [[self.name, "\(purged.messages)"]])
        }
    }

    struct DeleteQueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-queue", abstract: "Delete a queue; its consumers are cancelled.", discussion: BrokerAdminCommands.discussion)
        @Argument(help: "Queue name.") var name: String
        @Option(name: .customShort("p"), help: ArgumentHelp("Virtual host (as rabbitmqctl's -p).", valueName: "vhost")) var vhost: String = "/"
        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let deleted = try await self.admin.call(.DELETE, AdminOptions.path("queues", self.vhost, self.name), as: AdminAPI.Purged.self)
            self.admin.output(deleted, columns: ["queue", "messages_dropped"], rows: [[self.name, "\(deleted.messages)"]])
        }
    }
}
