import Broker
import Logging
import Testing

/// The same scenarios against our embedded broker, each on a fresh one bound to port 0.
@Suite("AMQPClient against the embedded broker", .timeLimit(.minutes(2)))
struct EmbeddedBrokerTests {
    static func withBroker(_ body: (String) async throws -> Void) async throws {
        let server = BrokerServer(configuration: BrokerConfiguration(port: 0), logger: Logger(label: "test.broker"))
        let port = try await server.start()
        do {
            try await body("amqp://guest:guest@127.0.0.1:\(port)/%2F")
        } catch {
            try? await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    @Test func declareBindPublishConsumeAck() async throws { try await Self.withBroker(Scenarios.declareBindPublishConsumeAck) }
    @Test func nackRequeueAndReject() async throws { try await Self.withBroker(Scenarios.nackRequeueAndReject) }
    @Test func qosLimitsInFlight() async throws { try await Self.withBroker(Scenarios.qosLimitsInFlight) }
    @Test func getAndGetEmpty() async throws { try await Self.withBroker(Scenarios.getAndGetEmpty) }
    @Test func mandatoryReturn() async throws { try await Self.withBroker(Scenarios.mandatoryReturn) }
    @Test func confirms() async throws { try await Self.withBroker(Scenarios.confirms) }
    @Test func transactions() async throws { try await Self.withBroker(Scenarios.transactions) }
    @Test func confirmsAfterGetAndAck() async throws { try await Self.withBroker(Scenarios.confirmsAfterGetAndAck) }
    @Test func exclusiveQueueLocked() async throws { try await Self.withBroker(Scenarios.exclusiveQueueLocked) }
    @Test func passiveDeclareMissing() async throws { try await Self.withBroker(Scenarios.passiveDeclareMissing) }
    @Test func wrongPassword() async throws { try await Self.withBroker(Scenarios.wrongPassword) }
    @Test func largeMessage() async throws { try await Self.withBroker(Scenarios.largeMessage) }

    @Test func recoveryThroughDroppedConnection() async throws {
        try await Self.withBroker { url in
            let port = try AMQPConnectionConfigurationPort(url)
            let proxy = try await TCPProxy(targetPort: port)
            try await Scenarios.recovery("amqp://guest:guest@127.0.0.1:\(proxy.port)/%2F") { proxy.severAll() }
            try await proxy.stop()
        }
    }

    /// The broker itself restarts (a new BrokerServer on the same port, empty state).
    @Test func recoveryAcrossBrokerRestart() async throws {
        let first = BrokerServer(configuration: BrokerConfiguration(port: 0), logger: Logger(label: "test.broker"))
        let port = try await first.start()
        let restarted = BrokerServerBox()
        try await Scenarios.recovery("amqp://guest:guest@127.0.0.1:\(port)/%2F") {
            try await first.shutdown()
            let second = BrokerServer(configuration: BrokerConfiguration(port: port), logger: Logger(label: "test.broker"))
            try await second.start()
            restarted.server = second
        }
        try await restarted.server?.shutdown()
    }
}

final class BrokerServerBox: @unchecked Sendable {
    var server: BrokerServer?
}

import AMQPClient

func AMQPConnectionConfigurationPort(_ url: String) throws -> Int {
    try AMQPConnectionConfiguration(url: url).port
}
