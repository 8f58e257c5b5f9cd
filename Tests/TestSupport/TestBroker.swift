import Broker
import Foundation
import Logging

/// An embedded broker for a test, in this process, on a free port (port 0).
///
/// Shared because AMQPClientTests, BrokerTests, AgentTests and ConductorTests all need the
/// same thing: a fresh broker per test that never collides with another test (or a real
/// broker) on a fixed port, and an AMQP URL pointing at it.
public struct TestBroker: Sendable {
    public let server: BrokerServer
    /// The port the broker bound (the configuration asked for 0).
    public let port: Int

    /// The URL of the built-in `guest` user (the broker's default when no users are given).
    public var url: String { self.url(user: "guest", password: "guest") }

    /// `amqp://USER:PASSWORD@127.0.0.1:PORT/%2F`.
    public func url(user: String, password: String) -> String {
        "amqp://\(user):\(password)@127.0.0.1:\(self.port)/%2F"
    }

    /// Quiet unless CONDUCTOR_TEST_LOG is set: a broker per test would otherwise drown the
    /// test output.
    public static let logger: Logger = {
        var logger = Logger(label: "test.broker")
        logger.logLevel = ProcessInfo.processInfo.environment["CONDUCTOR_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }()

    /// Starts a broker with `configuration`, whose port is replaced by 0.
    public static func start(_ configuration: BrokerConfiguration = BrokerConfiguration(port: 0), logger: Logger = TestBroker.logger) async throws -> TestBroker {
        var configuration = configuration
        configuration.port = 0
        let server = BrokerServer(configuration: configuration, logger: logger)
        let port = try await server.start()
        return TestBroker(server: server, port: port)
    }

    /// Starts a broker with these users, each allowed everything on "/" (nil: the built-in
    /// guest/guest), and, when `dataDirectory` is given, persistence there.
    /// `administrator`: that user may use the admin API, on 127.0.0.1 (`adminURL`), as a
    /// coordinator making agents' logins does.
    public static func start(
        users: [BrokerUser]?, dataDirectory: String? = nil, administrator: String? = nil, logger: Logger = TestBroker.logger
    ) async throws -> TestBroker {
        var configuration = BrokerConfiguration(port: 0, users: users, permissions: users?.map { BrokerPermission(user: $0.name, vhost: "/") })
        configuration.dataDirectory = dataDirectory
        if let administrator { configuration.admin = AdminConfiguration(host: "127.0.0.1", port: 0, administrators: [administrator]) }
        return try await self.start(configuration, logger: logger)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT` of the admin API (started with `administrator`).
    public func adminURL(user: String, password: String) -> String? {
        self.server.adminPort.map { "http://\(user):\(password)@127.0.0.1:\($0)" }
    }

    public func stop() async throws {
        try await self.server.shutdown()
    }
}

/// Runs `body` against a fresh ``TestBroker`` and stops the broker afterwards, also when
/// `body` throws (then the body's error is the one that surfaces).
public func withBroker<T>(
    _ configuration: BrokerConfiguration = BrokerConfiguration(port: 0), logger: Logger = TestBroker.logger,
    _ body: (TestBroker) async throws -> T
) async throws -> T {
    let broker = try await TestBroker.start(configuration, logger: logger)
    let result: T
    do {
        result = try await body(broker)
    } catch {
        try? await broker.stop()
        throw error
    }
    try await broker.stop()
    return result
}
