import AMQPProtocol
import NIOCore
import Testing

@testable import Broker

@Suite struct ServerConnectionStateMachineTests {
    static let tuning = ConnectionTuning(channelMax: 2047, frameMax: 131_072, heartbeat: 60)

    func machine(loopback: Bool = true) -> ServerConnectionStateMachine {
        let configuration = BrokerConfiguration(
            users: [BrokerUser(name: "guest", password: "guest", loopbackOnly: true), BrokerUser(name: "app", password: "pw")],
            vhosts: ["/", "other"],
            permissions: [BrokerPermission(user: "guest", vhost: "/"), BrokerPermission(user: "app", vhost: "/")]
        )
        return ServerConnectionStateMachine(authenticator: .init(configuration: configuration), serverTuning: Self.tuning, peerIsLoopback: loopback)
    }

    func plain(_ user: String, _ password: String) -> AMQP.Connection.StartOk {
        AMQP.Connection.StartOk(mechanism: "PLAIN", response: [0] + Array(user.utf8) + [0] + Array(password.utf8), locale: "en_US")
    }

    func closeCode(_ action: ServerConnectionStateMachine.Action) -> UInt16? {
        if case .sendClose(let close) = action { return close.replyCode }
        return nil
    }

    @Test func badProtocolHeaderIsAnsweredAndClosed() {
        var machine = self.machine()
        #expect(machine.protocolHeaderReceived(.rejected) == .sendProtocolHeaderAndClose)
    }

    @Test func fullHandshake() {
        var machine = self.machine()
        guard case .sendStart(let start) = machine.protocolHeaderReceived(.accepted) else { Issue.record("no start"); return }
        #expect(String(decoding: start.mechanisms, as: UTF8.self) == "PLAIN AMQPLAIN")
        #expect(machine.startOkReceived(plain("guest", "guest")) == .sendTune(.init(channelMax: 2047, frameMax: 131_072, heartbeat: 60)))
        #expect(machine.tuneOkReceived(.init(channelMax: 0, frameMax: 65536, heartbeat: 10)) == .applyTuning(.init(channelMax: 2047, frameMax: 65536, heartbeat: 10)))
        #expect(machine.openReceived(.init(virtualHost: "/")) == .sendOpenOk(user: "guest", vhost: "/"))
        #expect(machine.isOpen)
        #expect(machine.closeReceived(.init(replyCode: 200)) == .sendCloseOkAndCloseSocket)
    }

    @Test func amqplainIsAccepted() throws {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        var buffer = ByteBuffer()
        try buffer.writeFieldTableBody(["LOGIN": .string("app"), "PASSWORD": .string("pw")])
        let startOk = AMQP.Connection.StartOk(mechanism: "AMQPLAIN", response: Array(buffer.readableBytesView))
        #expect(machine.startOkReceived(startOk) == .sendTune(.init(channelMax: 2047, frameMax: 131_072, heartbeat: 60)))
    }

    @Test func wrongPasswordIsRefusedWith403() {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        #expect(closeCode(machine.startOkReceived(plain("guest", "nope"))) == 403)
        #expect(machine.closeOkReceived() == .closeSocket)
    }

    @Test func guestOnlyFromLoopback() {
        var remote = self.machine(loopback: false)
        _ = remote.protocolHeaderReceived(.accepted)
        #expect(closeCode(remote.startOkReceived(plain("guest", "guest"))) == 403)
        var other = self.machine(loopback: false)
        _ = other.protocolHeaderReceived(.accepted)
        #expect(closeCode(other.startOkReceived(plain("app", "pw"))) == nil)
    }

    @Test func unknownMechanismIs503() {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        #expect(closeCode(machine.startOkReceived(.init(mechanism: "EXTERNAL"))) == 503)
    }

    @Test func tuneOkAboveServerLimitsIs530() {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        _ = machine.startOkReceived(plain("guest", "guest"))
        #expect(closeCode(machine.tuneOkReceived(.init(channelMax: 0, frameMax: 1_000_000, heartbeat: 0))) == 530)
    }

    @Test func unknownOrForbiddenVhostIs530() {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        _ = machine.startOkReceived(plain("guest", "guest"))
        _ = machine.tuneOkReceived(.init(channelMax: 0, frameMax: 0, heartbeat: 0))
        #expect(closeCode(machine.openReceived(.init(virtualHost: "other"))) == 530)
        var second = self.machine()
        _ = second.protocolHeaderReceived(.accepted)
        _ = second.startOkReceived(plain("guest", "guest"))
        _ = second.tuneOkReceived(.init(channelMax: 0, frameMax: 0, heartbeat: 0))
        #expect(closeCode(second.openReceived(.init(virtualHost: "missing"))) == 530)
    }

    @Test func afterSendingCloseOnlyCloseOkMatters() {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        #expect(closeCode(machine.connectionError(replyCode: 501, text: "bad")) == 501)
        #expect(machine.unexpected(.connectionOpen(.init())) == .wait)
        #expect(machine.connectionError(replyCode: 502, text: "again") == .wait)
        #expect(machine.closeOkReceived() == .closeSocket)
    }

    @Test func methodsOutOfOrderAre503() {
        var machine = self.machine()
        _ = machine.protocolHeaderReceived(.accepted)
        #expect(closeCode(machine.openReceived(.init(virtualHost: "/"))) == 503)
    }
}
