import AMQPClient
import Agent
import Broker
import Foundation
import Logging
import Mesh
import MeshClient
import ServiceLifecycle
import TestSupport
import Testing

let rabbitMQURLForAgentTests = RabbitMQEnvironment.url

/// A bus to run agents on: the embedded broker with separate users, or RabbitMQ as guest.
struct TestBus: Sendable {
    enum Kind: String, Sendable, CaseIterable { case embedded, rabbitMQ }

    var kind: Kind
    /// What the agent connects with.
    var agentURL: String
    /// The trusted console (the conductor's identity).
    var conductorURL: String
    /// Another valid user, not trusted (embedded broker only: RabbitMQ has just guest here).
    var intruderURL: String?
    var trustedUser: String
    var broker: BrokerServer?

    static let logger: Logger = {
        var logger = Logger(label: "test.agent")
        logger.logLevel = ProcessInfo.processInfo.environment["CONDUCTOR_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }()

    static func start(_ kind: Kind) async throws -> TestBus {
        switch kind {
        case .rabbitMQ:
            let url = rabbitMQURLForAgentTests ?? ""
            return TestBus(kind: kind, agentURL: url, conductorURL: url, intruderURL: nil, trustedUser: "guest")
        case .embedded:
            let users = [
                BrokerUser(name: "conductor", password: "conductor-secret"),
                BrokerUser(name: "agent", password: "agent-secret"),
                BrokerUser(name: "intruder", password: "intruder-secret"),
            ]
            let started = try await TestBroker.start(users: users)
            let server = started.server
            let port = started.port
            return TestBus(
                kind: kind,
                agentURL: "amqp://agent:agent-secret@127.0.0.1:\(port)/%2F",
                conductorURL: "amqp://conductor:conductor-secret@127.0.0.1:\(port)/%2F",
                intruderURL: "amqp://intruder:intruder-secret@127.0.0.1:\(port)/%2F",
                trustedUser: "conductor", broker: server)
        }
    }

    func stop() async {
        try? await self.broker?.shutdown()
    }

    /// Kinds to run: the embedded broker always, RabbitMQ when CONDUCTOR_RABBITMQ_URL is set.
    static var kinds: [Kind] { rabbitMQURLForAgentTests == nil ? [.embedded] : [.embedded, .rabbitMQ] }

    func console(_ url: String? = nil) async throws -> MeshConsole {
        try await MeshConsole.connect(AMQPConnectionConfiguration(url: url ?? self.conductorURL))
    }

    func agentConfiguration(instance: String, state: TemporaryDirectory, grace: Duration = .seconds(5)) throws -> AgentConfiguration {
        var broker = try AMQPConnectionConfiguration(url: self.agentURL)
        broker.recovery = .init(initialBackoff: .milliseconds(50), maximumBackoff: .milliseconds(500))
        return AgentConfiguration(
            broker: broker, instanceID: instance, stateDirectory: state.path + "/state", factsDirectory: state.path + "/facts.d",
            heartbeatInterval: .milliseconds(300), trustedUser: self.trustedUser, shutdownGracePeriod: grace)
    }
}

/// Runs an agent in a ServiceGroup for the duration of `body`, then shuts it down gracefully.
func withAgent<T: Sendable>(
    _ configuration: AgentConfiguration, executor: JobExecutor = JobExecutor(),
    _ body: @Sendable (AgentService) async throws -> T
) async throws -> T {
    let agent = try AgentService(configuration: configuration, logger: TestBus.logger, executor: executor)
    let group = ServiceGroup(configuration: .init(services: [.init(service: agent)], logger: TestBus.logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: T
        do {
            result = try await body(agent)
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        self.path = NSTemporaryDirectory() + "conductor-agent-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: self.path + "/facts.d", withIntermediateDirectories: true)
    }

    func write(_ relative: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: self.path + "/" + relative))
    }

    func read(_ relative: String) -> String? {
        FileManager.default.contents(atPath: self.path + "/" + relative).map { String(decoding: $0, as: UTF8.self) }
    }

    func remove() { try? FileManager.default.removeItem(atPath: self.path) }
}

func uniqueInstance(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

extension MeshMessage {
    var exceptionBody: ExceptionBody? { self.opcode == .exception ? try? self.decodeBody(ExceptionBody.self) : nil }
}
