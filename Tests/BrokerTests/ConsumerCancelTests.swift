import AMQPProtocol
import Broker
import TestSupport
import Testing

/// `basic.cancel` from the broker (RabbitMQ's consumer_cancel_notify): a client that
/// announced the capability is told when the queue it consumes is deleted; one that did
/// not is told nothing (its consumer just stops), as RabbitMQ does.
@Suite(.timeLimit(.minutes(1)))
struct ConsumerCancelTests {
    @Test func deletingAQueueCancelsItsConsumersThatAskedToBeTold() async throws {
        try await withBroker { broker in
            let told = try await TestFrameClient.connect(port: broker.port)
            try await told.handshake(cancelNotifications: true)
            try await told.openChannel()
            let untold = try await TestFrameClient.connect(port: broker.port)
            try await untold.handshake(cancelNotifications: false)
            try await untold.openChannel()

            try await told.send(.queueDeclare(.init(queue: "cancel.me")), channel: 1)
            guard case .queueDeclareOk = try await told.nextMethod() else { Issue.record("no declare-ok"); return }
            try await told.send(.basicConsume(.init(queue: "cancel.me", consumerTag: "told-1")), channel: 1)
            guard case .basicConsumeOk = try await told.nextMethod() else { Issue.record("no consume-ok"); return }
            try await untold.send(.basicConsume(.init(queue: "cancel.me", consumerTag: "untold-1")), channel: 1)
            guard case .basicConsumeOk = try await untold.nextMethod() else { Issue.record("no consume-ok"); return }

            let deleter = try await TestFrameClient.connect(port: broker.port)
            try await deleter.handshake()
            try await deleter.openChannel()
            try await deleter.send(.queueDelete(.init(queue: "cancel.me")), channel: 1)
            guard case .queueDeleteOk = try await deleter.nextMethod() else { Issue.record("no delete-ok"); return }

            // Told: basic.cancel naming its consumer, before anything else.
            guard case .basicCancel(let cancel) = try await told.nextMethod() else { Issue.record("no basic.cancel"); return }
            #expect(cancel.consumerTag == "told-1")
            #expect(cancel.noWait)
            // Not told: the next thing it hears is the answer to its own next call.
            try await untold.send(.basicQos(.init(prefetchCount: 1)), channel: 1)
            let next = try await untold.nextMethod()
            guard case .basicQosOk = next else { Issue.record("expected qos-ok, got \(next.name)"); return }
            await told.close()
            await untold.close()
            await deleter.close()
        }
    }
}
