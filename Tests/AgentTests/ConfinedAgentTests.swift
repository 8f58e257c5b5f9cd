import AMQPClient
import Agent
import Broker
import Foundation
import Mesh
import MeshClient
import TestSupport
import Testing

/// Agents with a broker user of their own (issue 13): confined to their provisioned queues,
/// they declare nothing, and everything they send carries their user in `user_id`; with a
/// login that may declare, and no provisioned queues, they set up their own as before.
/// The embedded broker; every wait is bounded.
@Suite("Agents with their own broker user", .timeLimit(.minutes(2)))
struct ConfinedAgentTests {
    static let conductor = (user: "conductor", password: "conductor-secret")

    /// What the coordinator grants an agent's user: configure server-named queues only, write
    /// the default exchange and the two QMF exchanges, read its own two queues and
    /// server-named ones. (Topic permissions, `agent.ind.` only, are the broker's part.)
    static func confinedPermission(user: String, instance: String) -> BrokerPermission {
        let queues = #"^(conductor\.agent\."# + NSRegularExpression.escapedPattern(for: instance) + #"\.(jobs|requests)|amq\.gen-.*)$"#
        return BrokerPermission(
            user: user, vhost: "/", configure: #"^amq\.gen-.*"#, write: #"^(amq\.default|qmf\.default\.(topic|direct))$"#, read: queues)
    }

    static func configuration(url: String, instance: String, state: TemporaryDirectory, trusting signer: RequestSigner) throws -> AgentConfiguration {
        var broker = try AMQPConnectionConfiguration(url: url)
        broker.recovery = .init(initialBackoff: .milliseconds(50), maximumBackoff: .milliseconds(500))
        var configuration = AgentConfiguration(
            broker: broker, instanceID: instance, stateDirectory: state.path + "/state", factsDirectory: state.path + "/facts.d",
            heartbeatInterval: .milliseconds(300), trustedUser: Self.conductor.user, shutdownGracePeriod: .seconds(5))
        configuration.trustedKeys = [signer.publicKey]
        return configuration
    }

    /// A broker with the conductor's user and the agents' users given.
    static func broker(agents: [(user: String, password: String, permission: BrokerPermission)]) async throws -> TestBroker {
        let users = [BrokerUser(name: Self.conductor.user, password: Self.conductor.password)] + agents.map { BrokerUser(name: $0.user, password: $0.password) }
        let permissions = [BrokerPermission(user: Self.conductor.user, vhost: "/")] + agents.map(\.permission)
        return try await TestBroker.start(BrokerConfiguration(port: 0, users: users, permissions: permissions))
    }

    @Test func aConfinedAgentUsesItsProvisionedQueuesAndPutsItsUserOnEverythingItSends() async throws {
        let instance = uniqueInstance("confined")
        let user = try AgentName(instance: instance).brokerUser
        let broker = try await Self.broker(agents: [(user, "agent-secret", Self.confinedPermission(user: user, instance: instance))])
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let signer = RequestSigner()
        let console = try await MeshConsole.connect(AMQPConnectionConfiguration(url: broker.url(user: Self.conductor.user, password: Self.conductor.password)), signer: signer, answers: .ownLogins)
        do {
            let name = try AgentName(instance: instance)
            // As the coordinator provisions an agent before it starts; its console takes
            // answers only from the login of the agent they name (`AnswerCheck.ownLogins`).
            try await console.provisionQueues(for: name)
            let setup = try await console.connection.openChannel()
            let indications = try await IndicationWatch.start(console.connection)
            let configuration = try Self.configuration(url: broker.url(user: user, password: "agent-secret"), instance: instance, state: directory, trusting: signer)
            try await withAgent(configuration) { agent in
                try await Self.expectEverythingAnswered(by: agent, as: user, console: console, indications: indications, directory: directory)
                // It consumes the provisioned request queue (it could not have declared one).
                #expect(try await setup.queueDeclare(name: name.requestQueue, passive: true).consumerCount == 1)
            }
        } catch {
            try? await console.close()
            try? await broker.stop()
            throw error
        }
        try await console.close()
        try await broker.stop()
    }

    @Test func anAgentWhoseLoginMayDeclareAndHasNoProvisionedQueuesSetsUpItsOwn() async throws {
        let instance = uniqueInstance("legacy")
        let broker = try await Self.broker(agents: [("agent", "agent-secret", BrokerPermission(user: "agent", vhost: "/"))])
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let signer = RequestSigner()
        let console = try await MeshConsole.connect(AMQPConnectionConfiguration(url: broker.url(user: Self.conductor.user, password: Self.conductor.password)), signer: signer)
        do {
            let name = try AgentName(instance: instance)
            let indications = try await IndicationWatch.start(console.connection)
            let configuration = try Self.configuration(url: broker.url(user: "agent", password: "agent-secret"), instance: instance, state: directory, trusting: signer)
            try await withAgent(configuration) { agent in
                try await Self.expectEverythingAnswered(by: agent, as: "agent", console: console, indications: indications, directory: directory)
                // Its own exclusive request queue: the named one was never made.
                let probe = try await console.connection.openChannel()
                let missing = await #expect(throws: AMQPError.self) { try await probe.queueDeclare(name: name.requestQueue, passive: true) }
                #expect(missing?.replyCode == 404)
            }
            _ = try await console.deleteJobInbox(of: name)
        } catch {
            try? await console.close()
            try? await broker.stop()
            throw error
        }
        try await console.close()
        try await broker.stop()
    }

    @Test func aConfinedAgentWithoutProvisionedQueuesSaysSoAndStops() async throws {
        let instance = uniqueInstance("unprovisioned")
        let user = try AgentName(instance: instance).brokerUser
        let broker = try await Self.broker(agents: [(user, "agent-secret", Self.confinedPermission(user: user, instance: instance))])
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            var configuration = try Self.configuration(url: broker.url(user: user, password: "agent-secret"), instance: instance, state: directory, trusting: RequestSigner())
            configuration.refusalPatience = .zero
            let agent = try AgentService(configuration: configuration, logger: TestBus.logger)
            let error = await #expect(throws: AgentError.self) { try await agent.run() }
            #expect(error?.code == .queuesMissing)
            #expect(error?.message.contains("conductor.agent.\(instance).requests was not provisioned") == true, "\(String(describing: error))")
        } catch {
            try? await broker.stop()
            throw error
        }
        try await broker.stop()
    }

    /// Heartbeat, locate, direct and broadcast query, refresh, an exception, a signed run, a
    /// signed job and its event: each answered, each with `user_id` = `user`.
    static func expectEverythingAnswered(
        by agent: AgentService, as user: String, console: MeshConsole, indications: IndicationWatch, directory: TemporaryDirectory
    ) async throws {
        let name = agent.name
        let heartbeat = try await indications.next(timeout: .seconds(10)) { $0.opcode == .agentHeartbeatIndication && $0.agent == name.description }
        #expect(try #require(heartbeat, "no heartbeat from \(name)").userID == user)

        let locate = try MeshMessage(
            opcode: .agentLocateRequest, encoding: AgentLocateRequest(where: .compare(.eq, .property("_instance"), .literal(.string(name.instance)))))
        let located = try await console.request(locate, exchange: QMF.topicExchange, routingKey: QMF.Subject.agentLocate, timeout: .seconds(10)) { !$0.isEmpty }
        #expect(located.map(\.opcode) == [.agentLocateResponse])
        #expect(located.first?.userID == user)

        let direct = try await console.query(QueryRequest(what: .object), agent: name, timeout: .seconds(10))
        #expect(direct.objects.map(\.objectID.agentName) == [name.description])
        #expect(direct.replies.map(\.userID) == [user])
        let broadcast = try await console.query(QueryRequest(what: .objectID), timeout: .seconds(10), expectedAgents: 1)
        #expect(broadcast.replies.filter { $0.agent == name.description }.map(\.userID) == [user])

        let refresh = try #require(try await console.call(MethodRequest(methodName: MeshMethod.refresh), on: name, timeout: .seconds(10)))
        #expect(refresh.opcode == .methodResponse)
        #expect(refresh.userID == user)
        let unknown = try #require(try await console.call(MethodRequest(methodName: "reboot"), on: name, timeout: .seconds(10)))
        #expect(unknown.exceptionBody?.code == .notFound)
        #expect(unknown.userID == user)

        let marker = directory.path + "/ran"
        let run = try MethodRequest(methodName: MeshMethod.run, encoding: RunRequest(command: .argv(["/bin/sh", "-c", "echo run >> \(marker)"])))
        let ran = try #require(try await console.call(run, on: name, timeout: .seconds(10)))
        #expect(ran.opcode == .methodResponse, "\(ran.body)")
        #expect(ran.userID == user)

        let job = ConfigurationJob(jobID: "job-\(UUID().uuidString)", services: [ServiceSpec(name: "s", script: "echo job >> \(marker)")])
        let replyQueue = try await console.declareReplyQueue()
        try await console.sendJob(job, to: name, replyQueue: replyQueue, correlationID: "job")
        let replies = try await console.collect(replyQueue: replyQueue, correlationID: "job", timeout: .seconds(20)) { !$0.isEmpty }
        let reply = try #require(replies.first, "no answer to the job")
        #expect(try reply.decodeBody(MethodResponse.self).decodeArguments(JobResult.self).status == .succeeded, "\(reply.body)")
        #expect(reply.userID == user)
        let event = try await indications.next(timeout: .seconds(10)) { $0.opcode == .dataIndication && $0.agent == name.description }
        #expect(try #require(event, "no job_finished event").userID == user)
        #expect(directory.read("ran") == "run\njob\n")
    }
}

/// What agents publish under `agent.ind.#` (heartbeats, events), as received: a queue of
/// the console's connection, read with bounded polling.
struct IndicationWatch: Sendable {
    let channel: AMQPChannel
    let queue: String

    static func start(_ connection: AMQPConnection) async throws -> IndicationWatch {
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(exclusive: true, autoDelete: true).name
        try await channel.queueBind(queue: queue, exchange: QMF.topicExchange, routingKey: "agent.ind.#")
        return IndicationWatch(channel: channel, queue: queue)
    }

    /// The first message satisfying `matching` before `timeout`, or nil; others are dropped.
    func next(timeout: Duration, matching: (MeshMessage) -> Bool) async throws -> MeshMessage? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let delivery = try await self.channel.get(queue: self.queue, noAck: true) else {
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            if let message = try? MeshMessage(properties: delivery.properties, body: delivery.body), matching(message) { return message }
        }
        return nil
    }
}
