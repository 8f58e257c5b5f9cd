@testable import AMQPClient
import AMQPProtocol
import NIOCore
import Testing

@Suite struct ClientConnectionStateMachineTests {
    static let settings = ClientConnectionStateMachine.Settings(username: "u", password: "p", virtualHost: "/", heartbeat: 60, frameMax: 131_072, channelMax: 2047, clientProperties: [:])

    @Test func handshakeNegotiatesTheSmallerNonZeroValues() {
        var machine = ClientConnectionStateMachine(settings: Self.settings)
        #expect(machine.channelActive() == .sendProtocolHeader)
        guard case .sendStartOk(let startOk) = machine.methodReceived(.connectionStart(AMQP.Connection.Start(versionMajor: 0, versionMinor: 9, mechanisms: Array("AMQPLAIN PLAIN".utf8)))) else {
            Issue.record("expected start-ok"); return
        }
        #expect(startOk.mechanism == "PLAIN")
        #expect(startOk.response == [0] + Array("u".utf8) + [0] + Array("p".utf8))
        let negotiated = NegotiatedParameters(channelMax: 2047, frameMax: 4096, heartbeat: 60)
        #expect(machine.methodReceived(.connectionTune(AMQP.Connection.Tune(channelMax: 0, frameMax: 4096, heartbeat: 0))) == .sendTuneOkAndOpen(AMQP.Connection.TuneOk(channelMax: 2047, frameMax: 4096, heartbeat: 60), AMQP.Connection.Open(virtualHost: "/"), negotiated))
        #expect(machine.methodReceived(.connectionOpenOk(AMQP.Connection.OpenOk())) == .connected(negotiated, serverProperties: [:]))
        #expect(machine.isOpen)
    }

    @Test func externalSendsNoPasswordAndNeedsTheBrokerToOfferIt() {
        var settings = Self.settings
        settings.mechanism = .external
        var machine = ClientConnectionStateMachine(settings: settings)
        _ = machine.channelActive()
        guard case .sendStartOk(let startOk) = machine.methodReceived(.connectionStart(AMQP.Connection.Start(mechanisms: Array("PLAIN EXTERNAL".utf8)))) else {
            Issue.record("expected start-ok"); return
        }
        #expect(startOk.mechanism == "EXTERNAL")
        #expect(startOk.response.isEmpty)

        var refused = ClientConnectionStateMachine(settings: settings)
        _ = refused.channelActive()
        guard case .closeSocket(let error?) = refused.methodReceived(.connectionStart(AMQP.Connection.Start(mechanisms: Array("PLAIN AMQPLAIN".utf8)))) else {
            Issue.record("expected the socket closed with an error"); return
        }
        #expect(error.code == .authenticationFailed)
        #expect(error.message.contains("does not offer EXTERNAL authentication (offers: PLAIN AMQPLAIN"))
    }

    @Test func refusedCredentialsAre403AuthenticationFailed() {
        var machine = ClientConnectionStateMachine(settings: Self.settings)
        _ = machine.channelActive()
        _ = machine.methodReceived(.connectionStart(AMQP.Connection.Start(mechanisms: Array("PLAIN".utf8))))
        guard case .sendCloseOkAndClose(let error) = machine.methodReceived(.connectionClose(AMQP.Connection.Close(replyCode: 403, replyText: "ACCESS_REFUSED"))) else {
            Issue.record("expected close-ok"); return
        }
        #expect(error.code == .authenticationFailed)
        #expect(error.replyCode == 403)
    }

    @Test func socketDroppedAfterStartOkMeansAuthenticationFailed() {
        var machine = ClientConnectionStateMachine(settings: Self.settings)
        _ = machine.channelActive()
        _ = machine.methodReceived(.connectionStart(AMQP.Connection.Start(mechanisms: Array("PLAIN".utf8))))
        #expect(machine.channelInactive()?.code == .authenticationFailed)
    }

    @Test func twoSilentHeartbeatIntervalsCloseTheConnection() {
        var machine = ClientConnectionStateMachine(settings: Self.settings)
        _ = machine.channelActive()
        _ = machine.methodReceived(.connectionStart(AMQP.Connection.Start(mechanisms: Array("PLAIN".utf8))))
        _ = machine.methodReceived(.connectionTune(AMQP.Connection.Tune(channelMax: 0, frameMax: 0, heartbeat: 10)))
        _ = machine.methodReceived(.connectionOpenOk(AMQP.Connection.OpenOk()))
        #expect(machine.heartbeatTimerFired() == .sendHeartbeat)
        #expect(machine.heartbeatTimerFired() == .sendHeartbeat)
        machine.frameReceived()
        #expect(machine.heartbeatTimerFired() == .sendHeartbeat)
        #expect(machine.heartbeatTimerFired() == .sendHeartbeat)
        #expect(machine.heartbeatTimerFired() == .sendHeartbeat)
        guard case .closeSocket(let error?) = machine.heartbeatTimerFired() else { Issue.record("expected close"); return }
        #expect(error.code == .heartbeatTimeout)
    }
}

@Suite struct ClientChannelStateMachineTests {
    @Test func callsAreAnsweredInOrderOneInFlight() {
        var machine = ClientChannelStateMachine<Int>()
        guard case .send(.channelOpen) = machine.callRequested(.channelOpen(AMQP.Channel.Open()), 1) else { Issue.record("open not sent"); return }
        guard case .wait = machine.callRequested(.queuePurge(AMQP.Queue.Purge(queue: "q")), 2) else { Issue.record("second call must wait"); return }
        guard case .succeed(1, _, thenSend: .queuePurge?) = machine.methodReceived(.channelOpenOk(AMQP.Channel.OpenOk())) else { Issue.record("open-ok"); return }
        guard case .succeed(2, .method(.queuePurgeOk), thenSend: nil) = machine.methodReceived(.queuePurgeOk(AMQP.Queue.PurgeOk(messageCount: 3))) else { Issue.record("purge-ok"); return }
    }

    @Test func serverCloseFailsPendingCallsWithTheReplyCode() {
        var machine = ClientChannelStateMachine<Int>()
        _ = machine.callRequested(.channelOpen(AMQP.Channel.Open()), 1)
        _ = machine.methodReceived(.channelOpenOk(AMQP.Channel.OpenOk()))
        _ = machine.callRequested(.queueDeclare(AMQP.Queue.Declare(queue: "missing", passive: true)), 2)
        guard case .closedByServer(let error, let failing) = machine.methodReceived(.channelClose(AMQP.Channel.Close(replyCode: 404, replyText: "NOT_FOUND", classId: 50, methodId: 10))) else {
            Issue.record("expected closedByServer"); return
        }
        #expect(failing == [2])
        #expect(error.replyCode == 404)
        #expect(error.classID == 50)
        guard case .fail(3, let later) = machine.callRequested(.basicQos(AMQP.Basic.Qos()), 3) else { Issue.record("closed channel must refuse"); return }
        #expect(later.replyCode == 404)
    }

    @Test func deliveryIsReassembledFromHeaderAndBodies() {
        var machine = ClientChannelStateMachine<Int>()
        _ = machine.callRequested(.channelOpen(AMQP.Channel.Open()), 1)
        _ = machine.methodReceived(.channelOpenOk(AMQP.Channel.OpenOk()))
        guard case .wait = machine.methodReceived(.basicDeliver(AMQP.Basic.Deliver(consumerTag: "c", deliveryTag: 1))) else { Issue.record("deliver"); return }
        guard case .wait = machine.headerReceived(ContentHeader(bodySize: 6)) else { Issue.record("header"); return }
        guard case .wait = machine.bodyReceived(ByteBuffer(string: "abc")) else { Issue.record("body 1"); return }
        guard case .deliver(let content) = machine.bodyReceived(ByteBuffer(string: "def")) else { Issue.record("body 2"); return }
        #expect(String(buffer: content.body) == "abcdef")
    }
}

@Suite struct ConfirmTrackerTests {
    @Test func multipleAckResolvesARangeAndBatchWaitersSeeNacks() {
        var tracker = ConfirmTracker<String>()
        #expect(tracker.published(waiter: "m1") == 1)
        #expect(tracker.published() == 2)
        #expect(tracker.published() == 3)
        #expect(tracker.waitForAll("batch") == nil)
        let first = tracker.confirmReceived(deliveryTag: 2, multiple: true, ack: true)
        guard case .message("m1", acked: true) = first.first else { Issue.record("m1 not acked"); return }
        #expect(first.count == 1)
        let second = tracker.confirmReceived(deliveryTag: 3, multiple: false, ack: false)
        guard case .batch("batch", let nacked) = second.first else { Issue.record("batch not resolved"); return }
        #expect(nacked == [3])
        #expect(tracker.unconfirmedCount == 0)
    }
}

@Suite struct ConfigurationTests {
    @Test func urlParsing() throws {
        let configuration = try AMQPConnectionConfiguration(url: "amqp://agent%40x:p%3Ass@broker.local:5680/%2F?heartbeat=5")
        #expect(configuration.username == "agent@x")
        #expect(configuration.password == "p:ss")
        #expect(configuration.host == "broker.local")
        #expect(configuration.port == 5680)
        #expect(configuration.virtualHost == "/")
        #expect(configuration.heartbeat == 5)
        let defaults = try AMQPConnectionConfiguration(url: "amqp://localhost")
        #expect(defaults.username == "guest" && defaults.port == 5672 && defaults.virtualHost == "/")
        #expect(try AMQPConnectionConfiguration(url: "amqp://h/prod").virtualHost == "prod")
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "http://h") }
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "amqp://h:99999/") }
    }

    @Test func backoffDoublesUpToTheCap() {
        let policy = AMQPConnectionConfiguration.RecoveryPolicy(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1))
        #expect(policy.backoff(attempt: 0) == .milliseconds(100))
        #expect(policy.backoff(attempt: 2) == .milliseconds(400))
        #expect(policy.backoff(attempt: 10) == .seconds(1))
    }
}
