import AMQPClient
import Agent
import Broker
import Conductor
import Foundation
import Logging
import Mesh
import MeshClient
import Synchronization
import TestSupport
import Testing

/// A bus for coordinator tests (the embedded broker, or the RabbitMQ of
/// CONDUCTOR_RABBITMQ_URL), a coordinator on it with its own scope, and clients.
struct CoordinationHarness: Sendable {
    let broker: BrokerServer?
    let url: String
    let scope: String

    static let logger: Logger = {
        var logger = Logger(label: "test.coordinator")
        logger.logLevel = ProcessInfo.processInfo.environment["CONDUCTOR_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }()

    static func with(_ bus: LaunchBusKind, _ body: (CoordinationHarness) async throws -> Void) async throws {
        var broker: BrokerServer?
        let url: String
        switch bus {
        case .embedded:
            let users = [BrokerUser(name: "conductor", password: "c-secret")]
            let started = try await TestBroker.start(users: users)
            url = started.url(user: "conductor", password: "c-secret")
            broker = started.server
        case .rabbitMQ:
            url = try #require(LaunchBusKind.rabbitMQURL)
        }
        let harness = CoordinationHarness(broker: broker, url: url, scope: "t-\(UUID().uuidString.prefix(8).lowercased())")
        do {
            try await body(harness)
        } catch {
            try? await broker?.shutdown()
            throw error
        }
        try? await broker?.shutdown()
    }

    var configuration: AMQPConnectionConfiguration {
        var configuration = try! AMQPConnectionConfiguration(url: self.url)
        configuration.recovery = .disabled
        return configuration
    }

    /// Runs a coordinator for the duration of `body`, then stops it (and waits until it has).
    func withCoordinator<T: Sendable>(
        store: any CoordinationStore = InMemoryCoordinationStore(), ownerCheck: Duration = .milliseconds(200), clock: CoordinationClock = .system,
        _ body: (CoordinatorService) async throws -> T
    ) async throws -> T {
        let coordinator = try CoordinatorService(broker: self.configuration, scope: self.scope, store: store, logger: Self.logger, clock: clock, ownerCheckInterval: ownerCheck)
        let running = Task { try await coordinator.run() }
        do {
            try await coordinator.waitUntilReady()
            let result = try await body(coordinator)
            running.cancel()
            _ = await running.result
            return result
        } catch {
            running.cancel()
            _ = await running.result
            throw error
        }
    }

    func client() async throws -> CoordinatorClient {
        try await CoordinatorClient.connect(self.configuration, scope: self.scope)
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "conductor-coord-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A clock that moves only when the test says so (leases without sleeping).
final class ManualClock: Sendable {
    private let milliseconds = Synchronization.Mutex<Int64>(1_000_000)
    var clock: CoordinationClock { CoordinationClock { self.milliseconds.withLock { $0 } } }
    func advance(by delta: Int64) { self.milliseconds.withLock { $0 += delta } }
}
