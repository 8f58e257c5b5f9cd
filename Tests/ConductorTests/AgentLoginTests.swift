import AMQPClient
import AMQPProtocol
import Broker
@testable import Conductor
import Foundation
import Mesh
import MeshClient
import NIOCore
import TestSupport
import Testing

/// Issue 13's attack, on both brokers: the webapp is launched the way `conductor launch`
/// launches it (each agent its own login, made through the bus's management API), then one
/// node's login tries what an intruder on that node would.
@Suite(.timeLimit(.minutes(2)))
struct AgentLoginTests {
    static let webapp = LaunchTests.repository + "/examples/webapp/deployable.yml"

    @Test(arguments: LaunchBusKind.all) func oneNodesLoginReachesNothingOfAnother(bus kind: LaunchBusKind) async throws {
        try await Self.withWebapp(kind, third: kind == .embedded ? 31 : 32) { launched in
            let db = try launched.login("db")
            let web = try launched.login("web[0]")
            let webInbox = web.agent.jobInbox

            // db's login against web's queues, the agents' exchanges and console subjects.
            let intruder = try await AMQPConnection.connect(try AMQPConnectionConfiguration(url: db.url(from: launched.bus.agentURL)))
            defer { Task { try? await intruder.close() } }
            let refusals: [(String, @Sendable (AMQPChannel) async throws -> Void)] = [
                ("consume web's inbox", { _ = try await $0.consume(queue: webInbox) }),
                ("basic.get on web's inbox", { _ = try await $0.get(queue: webInbox) }),
                ("purge web's inbox", { _ = try await $0.queuePurge(name: webInbox) }),
                ("delete web's inbox", { _ = try await $0.queueDelete(name: webInbox) }),
                ("consume web's requests", { _ = try await $0.consume(queue: web.agent.requestQueue) }),
                ("bind a private queue to web's inbox key", { channel in
                    let queue = try await channel.queueDeclare(exclusive: true).name
                    try await channel.queueBind(queue: queue, exchange: QMF.directExchange, routingKey: webInbox)
                }),
                ("bind a private queue to web's name", { channel in
                    let queue = try await channel.queueDeclare(exclusive: true).name
                    try await channel.queueBind(queue: queue, exchange: QMF.directExchange, routingKey: web.agent.description)
                }),
                ("bind a private queue to every subject", { channel in
                    let queue = try await channel.queueDeclare(exclusive: true).name
                    try await channel.queueBind(queue: queue, exchange: QMF.topicExchange, routingKey: "#")
                }),
                ("publish a console subject", { channel in
                    try await channel.confirmSelect()
                    try await channel.publishConfirmed("{}", exchange: QMF.topicExchange, routingKey: QMF.Subject.query)
                }),
                ("delete the agents' exchange", { _ = try await $0.exchangeDelete(name: QMF.directExchange) }),
            ]
            for (what, attempt) in refusals {
                let channel = try await intruder.openChannel()
                do {
                    try await attempt(channel)
                    Issue.record("db's login could \(what) on \(kind)")
                } catch let error as AMQPError {
                    #expect(error.replyCode == 403, "\(what): \(error)")
                }
            }

            // The same login on its own queues, and an indication: allowed.
            let own = try await intruder.openChannel()
            #expect(try await own.get(queue: db.agent.jobInbox) == nil)
            _ = try await own.queueDeclare(exclusive: true)
            try await own.confirmSelect()
            try await own.publishConfirmed("{}", exchange: QMF.topicExchange, routingKey: "agent.ind.event.conductor.test")

            // web[0]'s login speaking for db: a heartbeat and an answer with db's name.
            let console = try await MeshConsole.connect(launched.bus.console, answers: .ownLogins)
            defer { Task { try? await console.close() } }
            let heartbeats = try await console.heartbeats()
            let replyQueue = try await console.declareReplyQueue()
            let forger = try await AMQPConnection.connect(try AMQPConnectionConfiguration(url: web.url(from: launched.bus.agentURL)))
            defer { Task { try? await forger.close() } }
            let channel = try await forger.openChannel()
            let forged = AgentInfo(
                name: db.agent, epoch: 9, timestamp: 0, heartbeatInterval: 1, attributes: ["ipaddress": .string("10.66.66.66")])
            var heartbeat = MeshMessage(opcode: .agentHeartbeatIndication, body: try MeshValue(encoding: forged), agent: db.agent.description)
            heartbeat.userID = web.user
            _ = try channel.publish(heartbeat.bodyBuffer(), exchange: QMF.topicExchange, routingKey: db.agent.heartbeatSubject, properties: heartbeat.properties())
            var answer = MeshMessage(
                opcode: .methodResponse, body: .map(["_arguments": .map(["values": .map(["ipaddress": .string("10.66.66.66")])])]),
                agent: db.agent.description, correlationID: "refresh-1")
            answer.method = .response
            answer.userID = web.user
            _ = try channel.publish(answer.bodyBuffer(), exchange: "", routingKey: replyQueue, properties: answer.properties())
            let taken = try await console.collect(replyQueue: replyQueue, correlationID: "refresh-1", from: db.agent, timeout: .seconds(2)) { !$0.isEmpty }
            #expect(taken.isEmpty, "a forged answer for db was taken: \(taken)")
            // The real db still answers its refresh, and its heartbeat is the one heard.
            let real = try #require(await Launcher.refresh(db.agent, console: console))
            #expect(real[path: "ipaddress"]?.stringValue == launched.address("db"))
            var iterator = heartbeats.makeAsyncIterator()
            let heard = try #require(try await iterator.next())
            #expect(heard.attributes["ipaddress"]?.stringValue != "10.66.66.66")

            // Nothing changed for the web servers.
            #expect(try await launched.launcher.reconfigure(deployment: "webapp", environment: "default").isEmpty)
        }
    }

    @Test(arguments: LaunchBusKind.all) func aTerminatedAgentsLoginNoLongerGetsIn(bus kind: LaunchBusKind) async throws {
        try await Self.withWebapp(kind, third: kind == .embedded ? 33 : 34) { launched in
            let db = try launched.login("db")
            let url = try AMQPConnectionConfiguration(url: db.url(from: launched.bus.agentURL))
            let open = try await AMQPConnection.connect(url)
            _ = try await launched.launcher.terminate(deployment: "webapp", environment: "default")
            do {
                let again = try await AMQPConnection.connect(url)
                try? await again.close()
                Issue.record("db's login still logs in on \(kind) after terminate")
            } catch let error as AMQPError {
                #expect(error.code == .authenticationFailed, "\(error)")
            }
            // The connection it had is closed by the broker.
            let deadline = ContinuousClock.now + .seconds(10)
            var closed = false
            while !closed, ContinuousClock.now < deadline {
                do {
                    _ = try await open.openChannel()
                    try await Task.sleep(for: .milliseconds(100))
                } catch {
                    closed = true
                }
            }
            #expect(closed, "the terminated agent's open connection was left open")
        }
    }

    // MARK: - A launched webapp

    struct Launched {
        var bus: LaunchBus
        var launcher: Launcher
        var store: SQLiteStateStore
        var status: DeploymentStatusReport

        func record(_ member: String) throws -> InstanceRecord {
            try #require(self.status.instances.first { $0.instance.member == member }?.instance)
        }

        func address(_ member: String) -> String? { try? self.record(member).address }

        /// The member's own login, as its agent has it (a deployment secret).
        func login(_ member: String) throws -> AgentIdentity {
            let instance = try self.record(member).id.uuidString.lowercased()
            let password = try #require(self.passwords[instance])
            return AgentIdentity(agent: try AgentName(instance: instance), password: password)
        }

        var passwords: [String: String] = [:]
    }

    static func withWebapp(_ kind: LaunchBusKind, third: UInt8, _ body: (Launched) async throws -> Void) async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rabbitMQ = LaunchBusKind.rabbitMQURL
        let bus: LaunchBus
        switch kind {
        case .embedded: bus = try await LaunchBus.start(broker: nil)
        case .rabbitMQ:
            let url: String = try #require(rabbitMQ)
            bus = try await LaunchBus.start(broker: url, busAdmin: RabbitMQEnvironment.managementURL)
        }
        defer { Task { await bus.stop() } }
        let store = try SQLiteStateStore(path: directory + "/state.sqlite")
        let provider = LocalProvider(executable: LaunchHarness.conductorBinary, addressPrefix: (127, 62, third))
        let options = LaunchOptions(
            stateDirectory: directory, console: bus.console, agentBrokerURL: bus.agentURL, waitBudget: .seconds(30), jobTimeout: .seconds(30),
            actor: .system, trustedUser: bus.trustedUser, accounts: bus.accounts)
        let launcher = Launcher(store: store, providers: [provider], options: options)
        do {
            let result = try await launcher.launch(LaunchRequest(file: Self.webapp))
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            let status = try #require(try await store.status(deployment: "webapp", environment: "default"))
            var launched = Launched(bus: bus, launcher: launcher, store: store, status: status)
            for entry in status.instances {
                let instance = entry.instance.id.uuidString.lowercased()
                launched.passwords[instance] = try await store.secret(
                    deployment: "webapp", environment: "default", name: AgentIdentity.secretName(instanceID: instance), actor: .system,
                    generate: { "never generated here" }
                ).value
            }
            try await body(launched)
        } catch {
            _ = try? await launcher.terminate(deployment: "webapp", environment: "default")
            throw error
        }
        _ = try? await launcher.terminate(deployment: "webapp", environment: "default")
    }
}
