import AMQPClient
import Broker
import Foundation
import Testing

/// Permissions and topic permissions, each scenario set up through the admin API and
/// checked over AMQP, run against our broker and (when its AMQP and management URLs are
/// set) the test RabbitMQ: what RabbitMQ does is the specification (docs/broker.md,
/// "Permissions").
enum PermissionScenarios {
    /// An agent's user as the coordinator provisions it (instance web-1): its own queues,
    /// server-named ones, publishing to the default and the QMF exchanges, and on the QMF
    /// topic exchange only the agent's indications.
    static let agentConfigure = #"^amq\.gen-.*"#
    static let agentWrite = #"^(amq\.default|qmf\.default\.(topic|direct))$"#
    static let agentRead = #"^(conductor\.agent\.web-1\.(jobs|requests)|amq\.gen-.*)$"#

    static func agentUser(_ broker: PermissionBroker) async throws {
        let guest = try await broker.connectAsGuest()
        let setup = try await guest.openChannel()
        try await setup.exchangeDeclare(name: "qmf.default.topic", type: "topic", durable: true)
        try await setup.exchangeDeclare(name: "qmf.default.direct", type: "direct", durable: true)
        for queue in ["conductor.agent.web-1.jobs", "conductor.agent.web-1.requests", "conductor.agent.db.jobs"] {
            _ = try await setup.queueDeclare(name: queue)
        }
        try await Permitted.publish(setup, exchange: "", routingKey: "conductor.agent.db.jobs")

        let user = try await broker.makeUser("web-1", configure: Self.agentConfigure, write: Self.agentWrite, read: Self.agentRead)
        try await broker.admin.setTopicPermissions(user: user, vhost: broker.vhost, exchange: "qmf.default.topic", write: #"^agent\.ind\."#, read: "^$")
        let agent = try await broker.connect(user: user, password: "pw")

        try await Permitted.expectRefused(
            "a console request on the QMF topic exchange", agent,
            resource: "topic 'console.request.query' in exchange 'qmf.default.topic'", on: broker, user: user
        ) { try await Permitted.publish($0, exchange: "qmf.default.topic", routingKey: "console.request.query") }
        try await Permitted.expectAllowed("an indication on the QMF topic exchange", agent) {
            try await Permitted.publish($0, exchange: "qmf.default.topic", routingKey: "agent.ind.heartbeat.conductor.agent")
        }
        try await Permitted.expectAllowed("a reply through the default exchange", agent) {
            try await Permitted.publish($0, exchange: "", routingKey: "conductor.agent.web-1.requests")
        }
        try await Permitted.expectAllowed("a server-named queue", agent) { channel in
            let declared = try await channel.queueDeclare(exclusive: true)
            #expect(declared.name.hasPrefix("amq.gen-"))
        }
        // Binding needs write on the queue, which amq.gen- queues are not in: no eavesdropping.
        for exchange in ["qmf.default.direct", "qmf.default.topic"] {
            let outcome = try await Permitted.outcome(agent) { channel in
                let declared = try await channel.queueDeclare(exclusive: true)
                try await channel.queueBind(queue: declared.name, exchange: exchange, routingKey: "console.request.query")
            }
            #expect(outcome?.replyCode == 403, "binding to \(exchange): \(outcome.map { "\($0)" } ?? "allowed")")
            #expect(outcome?.message.contains("access to queue 'amq.gen-") == true, "\(outcome?.message ?? "")")
        }
        let other = "conductor.agent.db.jobs"
        let otherQueue = "queue '\(other)'"
        try await Permitted.expectRefused("consuming another agent's jobs", agent, resource: otherQueue, on: broker, user: user) {
            _ = try await $0.consume(queue: other)
        }
        try await Permitted.expectRefused("getting another agent's jobs", agent, resource: otherQueue, on: broker, user: user) {
            _ = try await $0.get(queue: other)
        }
        try await Permitted.expectRefused("purging another agent's jobs", agent, resource: otherQueue, on: broker, user: user) {
            _ = try await $0.queuePurge(name: other)
        }
        try await Permitted.expectRefused("deleting another agent's queue", agent, resource: otherQueue, on: broker, user: user) {
            _ = try await $0.queueDelete(name: other)
        }
        try await Permitted.expectAllowed("consuming its own jobs", agent) { _ = try await $0.consume(queue: "conductor.agent.web-1.jobs") }
        try await Permitted.expectAllowed("a passive declare of another agent's queue", agent) { channel in
            let declared = try await channel.queueDeclare(name: other, passive: true)
            #expect(declared.messageCount == 1)
        }
        // Nothing was taken from the other agent's queue.
        #expect(try await setup.queueDeclare(name: other, passive: true).messageCount == 1)
        try await agent.close()
        try await guest.close()
    }

    /// Topic permissions on bindings (read, the binding key) and publishes (write, the
    /// routing key), with {username} and {vhost}; exchanges that are not of type topic and
    /// topic exchanges the user has no entry for are not limited.
    static func topicPermissions(_ broker: PermissionBroker) async throws {
        let guest = try await broker.connectAsGuest()
        let setup = try await guest.openChannel()
        try await setup.exchangeDeclare(name: "events", type: "topic")
        try await setup.exchangeDeclare(name: "commands", type: "direct")
        try await setup.exchangeDeclare(name: "sink.events", type: "fanout")
        let user = try await broker.makeUser("topics", configure: #"^(amq\.gen-.*|sink\..*)"#, write: ".*", read: ".*")
        try await broker.admin.setTopicPermissions(
            user: user, vhost: broker.vhost, exchange: "events", write: #"^from\.{username}\."#, read: #"^(to\.{username}\..*|all\.{vhost})$"#)
        // A topic permission on a direct exchange: RabbitMQ checks topic exchanges only.
        try await broker.admin.setTopicPermissions(user: user, vhost: broker.vhost, exchange: "commands", write: "^$", read: "^$")
        let listed = try await broker.admin.topicPermissions(user: user, vhost: broker.vhost)
        #expect(Set(listed.map(\.exchange)) == ["events", "commands"])
        #expect(listed.first { $0.exchange == "events" }?.write == #"^from\.{username}\."#)

        let connection = try await broker.connect(user: user, password: "pw")
        try await Permitted.expectAllowed("publishing under its own name", connection) {
            try await Permitted.publish($0, exchange: "events", routingKey: "from.\(user).started")
        }
        try await Permitted.expectRefused(
            "publishing under another name", connection, resource: "topic 'from.someone.started' in exchange 'events'", on: broker, user: user
        ) { try await Permitted.publish($0, exchange: "events", routingKey: "from.someone.started") }
        try await Permitted.expectAllowed("binding to its own keys and the vhost's", connection) { channel in
            let queue = try await channel.queueDeclare(exclusive: true).name
            try await channel.queueBind(queue: queue, exchange: "events", routingKey: "to.\(user).#")
            try await channel.queueBind(queue: queue, exchange: "events", routingKey: "all.\(broker.vhost)")
            try await channel.queueUnbind(queue: queue, exchange: "events", routingKey: "to.\(user).#")
        }
        try await Permitted.expectRefused(
            "binding to everything", connection, resource: "topic '#' in exchange 'events'", on: broker, user: user
        ) { channel in
            let queue = try await channel.queueDeclare(exclusive: true).name
            try await channel.queueBind(queue: queue, exchange: "events", routingKey: "#")
        }
        try await Permitted.expectRefused(
            "unbinding a key it may not bind", connection, resource: "topic 'to.someone.#' in exchange 'events'", on: broker, user: user
        ) { channel in
            let queue = try await channel.queueDeclare(exclusive: true).name
            try await channel.queueUnbind(queue: queue, exchange: "events", routingKey: "to.someone.#")
        }
        try await Permitted.expectRefused(
            "an exchange binding from the topic exchange", connection, resource: "topic 'from.#' in exchange 'events'", on: broker, user: user
        ) { channel in
            try await channel.exchangeDeclare(name: "sink.mine", type: "fanout", autoDelete: true)
            try await channel.exchangeBind(destination: "sink.mine", source: "events", routingKey: "from.#")
        }
        try await Permitted.expectAllowed("an exchange binding with its own key", connection) { channel in
            try await channel.exchangeBind(destination: "sink.events", source: "events", routingKey: "to.\(user).x")
            try await channel.exchangeUnbind(destination: "sink.events", source: "events", routingKey: "to.\(user).x")
        }
        try await Permitted.expectAllowed("a direct exchange with a topic permission entry", connection) { channel in
            try await Permitted.publish(channel, exchange: "commands", routingKey: "anything")
            let queue = try await channel.queueDeclare(exclusive: true).name
            try await channel.queueBind(queue: queue, exchange: "commands", routingKey: "anything")
        }
        try await Permitted.expectAllowed("a topic exchange it has no entry for", connection) { channel in
            try await Permitted.publish(channel, exchange: "amq.topic", routingKey: "from.someone.else")
            let queue = try await channel.queueDeclare(exclusive: true).name
            try await channel.queueBind(queue: queue, exchange: "amq.topic", routingKey: "#")
        }
        try await connection.close()
        try await guest.close()
    }

    /// A change through the admin API reaches open connections at their next operation,
    /// and clearing a user's permissions leaves its connection open but refuses everything.
    static func changesReachOpenConnections(_ broker: PermissionBroker) async throws {
        let guest = try await broker.connectAsGuest()
        try await guest.openChannel().exchangeDeclare(name: "news", type: "topic")
        let user = try await broker.makeUser("changing", configure: ".*", write: ".*", read: ".*")
        let connection = try await broker.connect(user: user, password: "pw")
        try await Permitted.expectAllowed("declaring before the change", connection) { _ = try await $0.queueDeclare(name: "changing.before") }
        try await Permitted.expectAllowed("publishing before the topic permission", connection) {
            try await Permitted.publish($0, exchange: "news", routingKey: "sports")
        }
        try await broker.admin.setPermissions(user: user, vhost: broker.vhost, configure: "^nothing$", write: ".*", read: ".*")
        try await Permitted.expectRefused(
            "declaring after the change", connection, resource: "queue 'changing.after'", on: broker, user: user
        ) { _ = try await $0.queueDeclare(name: "changing.after") }
        try await broker.admin.setTopicPermissions(user: user, vhost: broker.vhost, exchange: "news", write: "^weather$", read: ".*")
        try await Permitted.expectRefused(
            "publishing after the topic permission", connection, resource: "topic 'sports' in exchange 'news'", on: broker, user: user
        ) { try await Permitted.publish($0, exchange: "news", routingKey: "sports") }
        try await broker.admin.clearTopicPermissions(user: user, vhost: broker.vhost)
        #expect(try await broker.admin.topicPermissions(user: user, vhost: broker.vhost).isEmpty)
        try await Permitted.expectAllowed("publishing once the topic permission is cleared", connection) {
            try await Permitted.publish($0, exchange: "news", routingKey: "sports")
        }
        try await broker.admin.clearPermissions(user: user, vhost: broker.vhost)
        try await Permitted.expectRefused(
            "publishing without permissions", connection, resource: "exchange 'news'", on: broker, user: user
        ) { try await Permitted.publish($0, exchange: "news", routingKey: "sports") }
        #expect(connection.isConnected)
        // A new connection is refused at connection.open (530: no access to the vhost).
        await #expect {
            _ = try await broker.connect(user: user, password: "pw")
        } throws: { error in
            (error as? AMQPError)?.replyCode == 530
        }
        try await connection.close()
        try await guest.close()
    }

    /// Deleting a user closes its connections (320 CONNECTION_FORCED "user '…' is deleted"),
    /// refuses its credentials, and takes its permissions and topic permissions with it.
    static func deletedUserIsClosedAndRefused(_ broker: PermissionBroker) async throws {
        let user = try await broker.makeUser("leaving", configure: ".*", write: ".*", read: ".*")
        try await broker.admin.setTopicPermissions(user: user, vhost: broker.vhost, exchange: "amq.topic", write: "^a$", read: "^a$")
        let connection = try await broker.connect(user: user, password: "pw")
        _ = try await connection.openChannel()
        try await broker.admin.deleteUser(user)
        var closure: AMQPError?
        for _ in 0..<250 where closure == nil {
            do {
                _ = try await connection.openChannel()
                try await Task.sleep(for: .milliseconds(20))
            } catch let error as AMQPError {
                closure = error
            }
        }
        #expect(closure?.replyCode == 320, "\(closure.map { "\($0)" } ?? "still open")")
        #expect(closure?.message.contains("CONNECTION_FORCED - user '\(user)' is deleted") == true, "\(closure?.message ?? "")")
        await #expect {
            _ = try await broker.connect(user: user, password: "pw")
        } throws: { error in
            (error as? AMQPError)?.code == .authenticationFailed && (error as? AMQPError)?.replyCode == 403
        }
        // Made again, the user starts with nothing.
        try await broker.admin.createUser(user, password: "pw")
        #expect(try await broker.admin.topicPermissions(user: user).isEmpty)
        await #expect {
            _ = try await broker.connect(user: user, password: "pw")
        } throws: { error in
            (error as? AMQPError)?.replyCode == 530
        }
        try await broker.admin.deleteUser(user)
    }

    /// RabbitMQ's "How Permissions Work" table, each row allowed and refused. The user's
    /// patterns read the letters before a name's first dot: c configure, w write, r read
    /// ("cw.q" is configurable and writable).
    static func permissionMatrix(_ broker: PermissionBroker) async throws {
        let guest = try await broker.connectAsGuest()
        let setup = try await guest.openChannel()
        for exchange in ["c.x", "rw.x", "w.x", "r.x", "c.gone"] { try await setup.exchangeDeclare(name: exchange, type: "direct") }
        for queue in ["c.q", "rw.q", "r.q", "w.q", "cw.q", "c.gone-q"] { _ = try await setup.queueDeclare(name: queue) }
        try await setup.queueBind(queue: "w.q", exchange: "r.x", routingKey: "k")
        try await setup.queueBind(queue: "r.q", exchange: "r.x", routingKey: "k")
        try await setup.queueBind(queue: "w.q", exchange: "w.x", routingKey: "k")
        let user = try await broker.makeUser("matrix", configure: #"^\w*c\w*\."#, write: #"^\w*w\w*\."#, read: #"^\w*r\w*\."#)
        let connection = try await broker.connect(user: user, password: "pw")
        func refused(
            _ what: String, _ resource: String, sourceLocation: SourceLocation = #_sourceLocation, _ operation: (AMQPChannel) async throws -> Void
        ) async throws {
            try await Permitted.expectRefused(what, connection, resource: resource, on: broker, user: user, sourceLocation: sourceLocation, operation)
        }
        func allowed(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ operation: (AMQPChannel) async throws -> Void) async throws {
            try await Permitted.expectAllowed(what, connection, sourceLocation: sourceLocation, operation)
        }

        // exchange.declare / delete: configure on the exchange; passive needs nothing.
        try await allowed("exchange.declare") { try await $0.exchangeDeclare(name: "c.new-x", type: "direct") }
        try await refused("exchange.declare", "exchange 'rw.new-x'") { try await $0.exchangeDeclare(name: "rw.new-x", type: "direct") }
        try await allowed("exchange.declare passive") { try await $0.exchangeDeclare(name: "rw.x", type: "direct", passive: true) }
        try await allowed("exchange.delete") { try await $0.exchangeDelete(name: "c.gone") }
        try await refused("exchange.delete", "exchange 'rw.x'") { try await $0.exchangeDelete(name: "rw.x") }
        // An alternate exchange: also read on the new exchange and write on the alternate.
        try await allowed("exchange.declare with alternate-exchange") {
            try await $0.exchangeDeclare(name: "cr.ae", type: "fanout", arguments: ["alternate-exchange": .string("w.x")])
        }
        try await refused("alternate-exchange not writable", "exchange 'r.x'") {
            try await $0.exchangeDeclare(name: "cr.ae2", type: "fanout", arguments: ["alternate-exchange": .string("r.x")])
        }
        try await refused("exchange with an alternate not readable", "exchange 'c.ae3'") {
            try await $0.exchangeDeclare(name: "c.ae3", type: "fanout", arguments: ["alternate-exchange": .string("w.x")])
        }

        // queue.declare / delete: configure on the queue; passive needs nothing.
        try await allowed("queue.declare") { _ = try await $0.queueDeclare(name: "c.new-q") }
        try await refused("queue.declare", "queue 'rw.new-q'") { _ = try await $0.queueDeclare(name: "rw.new-q") }
        try await allowed("queue.declare passive") { _ = try await $0.queueDeclare(name: "rw.q", passive: true) }
        try await allowed("queue.delete") { _ = try await $0.queueDelete(name: "c.gone-q") }
        try await refused("queue.delete", "queue 'rw.q'") { _ = try await $0.queueDelete(name: "rw.q") }
        // A dead letter exchange: also read on the new queue and write on the exchange.
        try await allowed("queue.declare with x-dead-letter-exchange") {
            _ = try await $0.queueDeclare(name: "cr.dl", arguments: ["x-dead-letter-exchange": .string("w.x")])
        }
        try await refused("dead letter exchange not writable", "exchange 'r.x'") {
            _ = try await $0.queueDeclare(name: "cr.dl2", arguments: ["x-dead-letter-exchange": .string("r.x")])
        }
        try await refused("queue with a dead letter exchange not readable", "queue 'c.dl3'") {
            _ = try await $0.queueDeclare(name: "c.dl3", arguments: ["x-dead-letter-exchange": .string("w.x")])
        }
        try await refused("the default exchange as dead letter exchange", "exchange 'amq.default'") {
            _ = try await $0.queueDeclare(name: "cr.dl4", arguments: ["x-dead-letter-exchange": .string("")])
        }

        // queue.purge, basic.get, basic.consume: read on the queue.
        try await allowed("queue.purge") { _ = try await $0.queuePurge(name: "r.q") }
        try await refused("queue.purge", "queue 'cw.q'") { _ = try await $0.queuePurge(name: "cw.q") }
        try await allowed("basic.get") { _ = try await $0.get(queue: "r.q") }
        try await refused("basic.get", "queue 'cw.q'") { _ = try await $0.get(queue: "cw.q") }
        try await allowed("basic.consume") { _ = try await $0.consume(queue: "r.q") }
        try await refused("basic.consume", "queue 'cw.q'") { _ = try await $0.consume(queue: "cw.q") }

        // queue.bind / unbind: write on the queue, read on the exchange.
        try await allowed("queue.bind") { try await $0.queueBind(queue: "w.q", exchange: "r.x", routingKey: "k2") }
        try await refused("queue.bind, queue not writable", "queue 'r.q'") { try await $0.queueBind(queue: "r.q", exchange: "r.x", routingKey: "k2") }
        try await refused("queue.bind, exchange not readable", "exchange 'w.x'") { try await $0.queueBind(queue: "w.q", exchange: "w.x", routingKey: "k2") }
        try await allowed("queue.unbind") { try await $0.queueUnbind(queue: "w.q", exchange: "r.x", routingKey: "k") }
        try await refused("queue.unbind, queue not writable", "queue 'r.q'") { try await $0.queueUnbind(queue: "r.q", exchange: "r.x", routingKey: "k") }
        try await refused("queue.unbind, exchange not readable", "exchange 'w.x'") { try await $0.queueUnbind(queue: "w.q", exchange: "w.x", routingKey: "k") }

        // exchange.bind / unbind: write on the destination, read on the source.
        try await allowed("exchange.bind") { try await $0.exchangeBind(destination: "w.x", source: "r.x", routingKey: "k") }
        try await refused("exchange.bind, destination not writable", "exchange 'r.x'") { try await $0.exchangeBind(destination: "r.x", source: "r.x", routingKey: "k") }
        try await refused("exchange.bind, source not readable", "exchange 'w.x'") { try await $0.exchangeBind(destination: "w.x", source: "w.x", routingKey: "k") }
        try await allowed("exchange.unbind") { try await $0.exchangeUnbind(destination: "w.x", source: "r.x", routingKey: "k") }
        try await refused("exchange.unbind, destination not writable", "exchange 'r.x'") { try await $0.exchangeUnbind(destination: "r.x", source: "r.x", routingKey: "k") }
        try await refused("exchange.unbind, source not readable", "exchange 'w.x'") { try await $0.exchangeUnbind(destination: "w.x", source: "w.x", routingKey: "k") }

        // basic.publish: write on the exchange, the default one named amq.default.
        try await allowed("basic.publish") { try await Permitted.publish($0, exchange: "w.x", routingKey: "k") }
        try await refused("basic.publish", "exchange 'r.x'") { try await Permitted.publish($0, exchange: "r.x", routingKey: "k") }
        try await refused("basic.publish to the default exchange", "exchange 'amq.default'") {
            try await Permitted.publish($0, exchange: "", routingKey: "w.q")
        }
        try await connection.close()
        try await guest.close()
    }
}

@Suite("Permissions on our broker", .timeLimit(.minutes(2)))
struct PermissionTests {
    @Test func agentUser() async throws { try await PermissionBroker.with(.ours, PermissionScenarios.agentUser) }
    @Test func topicPermissions() async throws { try await PermissionBroker.with(.ours, PermissionScenarios.topicPermissions) }
    @Test func changesReachOpenConnections() async throws { try await PermissionBroker.with(.ours, PermissionScenarios.changesReachOpenConnections) }
    @Test func deletedUserIsClosedAndRefused() async throws { try await PermissionBroker.with(.ours, PermissionScenarios.deletedUserIsClosedAndRefused) }
    @Test func permissionMatrix() async throws { try await PermissionBroker.with(.ours, PermissionScenarios.permissionMatrix) }
}

@Suite("Permissions on RabbitMQ", .enabled(if: PermissionBroker.rabbitMQAvailable, PermissionBroker.rabbitMQMissing), .timeLimit(.minutes(2)))
struct PermissionRabbitMQTests {
    @Test func agentUser() async throws { try await PermissionBroker.with(.rabbitMQ, PermissionScenarios.agentUser) }
    @Test func topicPermissions() async throws { try await PermissionBroker.with(.rabbitMQ, PermissionScenarios.topicPermissions) }
    @Test func changesReachOpenConnections() async throws { try await PermissionBroker.with(.rabbitMQ, PermissionScenarios.changesReachOpenConnections) }
    @Test func deletedUserIsClosedAndRefused() async throws { try await PermissionBroker.with(.rabbitMQ, PermissionScenarios.deletedUserIsClosedAndRefused) }
    @Test func permissionMatrix() async throws { try await PermissionBroker.with(.rabbitMQ, PermissionScenarios.permissionMatrix) }
}
