import Broker
import TestSupport
import Testing

/// The same scenarios against our embedded broker, each on a fresh one bound to port 0.
@Suite("AMQPClient against the embedded broker", .timeLimit(.minutes(2)))
struct EmbeddedBrokerTests {
    @Test func declareBindPublishConsumeAck() async throws { try await withBroker { try await Scenarios.declareBindPublishConsumeAck($0.url) } }
    @Test func nackRequeueAndReject() async throws { try await withBroker { try await Scenarios.nackRequeueAndReject($0.url) } }
    @Test func qosLimitsInFlight() async throws { try await withBroker { try await Scenarios.qosLimitsInFlight($0.url) } }
    @Test func getAndGetEmpty() async throws { try await withBroker { try await Scenarios.getAndGetEmpty($0.url) } }
    @Test func mandatoryReturn() async throws { try await withBroker { try await Scenarios.mandatoryReturn($0.url) } }
    @Test func confirms() async throws { try await withBroker { try await Scenarios.confirms($0.url) } }
    @Test func transactions() async throws { try await withBroker { try await Scenarios.transactions($0.url) } }
    @Test func confirmsAfterGetAndAck() async throws { try await withBroker { try await Scenarios.confirmsAfterGetAndAck($0.url) } }
    @Test func exclusiveQueueLocked() async throws { try await withBroker { try await Scenarios.exclusiveQueueLocked($0.url) } }
    @Test func passiveDeclareMissing() async throws { try await withBroker { try await Scenarios.passiveDeclareMissing($0.url) } }
    @Test func wrongPassword() async throws { try await withBroker { try await Scenarios.wrongPassword($0.url) } }
    @Test func largeMessage() async throws { try await withBroker { try await Scenarios.largeMessage($0.url) } }

    @Test func recoveryThroughDroppedConnection() async throws {
        try await withBroker { broker in
            let port = broker.port
            let proxy = try await TCPProxy(targetPort: port)
            try await Scenarios.recovery("amqp://guest:guest@127.0.0.1:\(proxy.port)/%2F") { proxy.severAll() }
            try await proxy.stop()
        }
    }

    /// The broker itself restarts (a new BrokerServer on the same port, empty state).
    @Test func recoveryAcrossBrokerRestart() async throws {
        let first = try await TestBroker.start()
        let port = first.port
        let restarted = BrokerServerBox()
        try await Scenarios.recovery(first.url) {
            try await first.stop()
            let second = BrokerServer(configuration: BrokerConfiguration(port: port), logger: TestBroker.logger)
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
