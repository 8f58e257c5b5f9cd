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
    /// A second login of the bus (`mallory` on the embedded broker); nil on the test
    /// RabbitMQ, which has guest only.
    let otherURL: String?
    let scope: String

    static let logger: Logger = {
        var logger = Logger(label: "test.coordinator")
        logger.logLevel = ProcessInfo.processInfo.environment["CONDUCTOR_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }()

    static func with(_ bus: LaunchBusKind, _ body: (CoordinationHarness) async throws -> Void) async throws {
        var broker: BrokerServer?
        let url: String
        var otherURL: String?
        switch bus {
        case .embedded:
            let users = [BrokerUser(name: "conductor", password: "c-secret"), BrokerUser(name: "mallory", password: "m-secret")]
            let started = try await TestBroker.start(users: users)
            url = started.url(user: "conductor", password: "c-secret")
            otherURL = started.url(user: "mallory", password: "m-secret")
            broker = started.server
        case .rabbitMQ:
            url = try #require(LaunchBusKind.rabbitMQURL)
        }
        let harness = CoordinationHarness(broker: broker, url: url, otherURL: otherURL, scope: "t-\(UUID().uuidString.prefix(8).lowercased())")
        do {
            try await body(harness)
        } catch {
            try? await broker?.shutdown()
            throw error
        }
        try? await broker?.shutdown()
    }

    var configuration: AMQPConnectionConfiguration { Self.configuration(self.url) }

    static func configuration(_ url: String) -> AMQPConnectionConfiguration {
        var configuration = try! AMQPConnectionConfiguration(url: url)
        configuration.recovery = .disabled
        return configuration
    }

    /// Runs a coordinator for the duration of `body`, then stops it (and waits until it has).
    /// `trustedUser`: who may force a release (nil: the coordinator's own login).
    func withCoordinator<T: Sendable>(
        store: any CoordinationStore = InMemoryCoordinationStore(), ownerCheck: Duration = .milliseconds(200), clock: CoordinationClock = .system,
        trustedUser: String? = nil, logger: Logger = CoordinationHarness.logger, _ body: (CoordinatorService) async throws -> T
    ) async throws -> T {
        let coordinator = try CoordinatorService(
            broker: self.configuration, scope: self.scope, store: store, trustedUser: trustedUser, logger: logger, clock: clock, ownerCheckInterval: ownerCheck)
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

    /// A client on the other login when the bus has one, else on a connection of its own.
    func otherClient() async throws -> CoordinatorClient {
        try await CoordinatorClient.connect(Self.configuration(self.otherURL ?? self.url), scope: self.scope)
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

/// Keeps the log records at `logLevel` and above, as lines (the coordinator's refusals).
struct CapturedLog: LogHandler {
    final class Lines: Sendable {
        private let lines = Synchronization.Mutex<[String]>([])
        func append(_ line: String) { self.lines.withLock { $0.append(line) } }
        var all: [String] { self.lines.withLock { $0 } }
    }

    let lines: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let metadata = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        self.lines.append("\(event.level) \(event.message) " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }

    static func logger() -> (Logger, Lines) {
        let lines = Lines()
        return (Logger(label: "test.coordinator.captured", factory: { _ in CapturedLog(lines: lines) }), lines)
    }
}
