import Foundation
import TestSupport
import Testing

let rabbitMQURL = RabbitMQEnvironment.url

@Suite("AMQPClient against RabbitMQ", .enabled(if: rabbitMQURL != nil), .timeLimit(.minutes(2)))
struct RabbitMQTests {
    let url = rabbitMQURL ?? ""

    @Test func declareBindPublishConsumeAck() async throws { try await Scenarios.declareBindPublishConsumeAck(self.url) }
    @Test func nackRequeueAndReject() async throws { try await Scenarios.nackRequeueAndReject(self.url) }
    @Test func qosLimitsInFlight() async throws { try await Scenarios.qosLimitsInFlight(self.url) }
    @Test func getAndGetEmpty() async throws { try await Scenarios.getAndGetEmpty(self.url) }
    @Test func mandatoryReturn() async throws { try await Scenarios.mandatoryReturn(self.url) }
    @Test func confirms() async throws { try await Scenarios.confirms(self.url) }
    @Test func transactions() async throws { try await Scenarios.transactions(self.url) }
    @Test func confirmsAfterGetAndAck() async throws { try await Scenarios.confirmsAfterGetAndAck(self.url) }
    @Test func exclusiveQueueLocked() async throws { try await Scenarios.exclusiveQueueLocked(self.url) }
    @Test func passiveDeclareMissing() async throws { try await Scenarios.passiveDeclareMissing(self.url) }
    @Test func wrongPassword() async throws { try await Scenarios.wrongPassword(self.url) }
    @Test func largeMessage() async throws { try await Scenarios.largeMessage(self.url) }
}

extension RabbitMQTests {
    @Test func recoveryThroughDroppedConnection() async throws {
        let port = try AMQPConnectionConfigurationPort(self.url)
        let proxy = try await TCPProxy(targetPort: port)
        try await Scenarios.recovery("amqp://guest:guest@127.0.0.1:\(proxy.port)/%2F") { proxy.severAll() }
        try await proxy.stop()
    }
}
