import AMQPProtocol

/// The values both sides settled on in tune/tune-ok.
struct NegotiatedParameters: Sendable, Hashable {
    var channelMax: UInt16
    var frameMax: UInt32
    var heartbeat: UInt16
}

/// The client's side of an AMQP connection (channel 0): the handshake, heartbeats and
/// the close handshake. Pure: events in, actions out; the handler runs the actions.
struct ClientConnectionStateMachine {
    struct Settings: Hashable {
        var username: String
        var password: String
        var mechanism: AMQPConnectionConfiguration.AuthenticationMechanism = .plain
        var virtualHost: String
        var heartbeat: UInt16
        var frameMax: UInt32
        var channelMax: UInt16
        var clientProperties: FieldTable
    }

    private enum State {
        case idle
        case awaitingStart
        case awaitingTune
        case awaitingOpenOk(NegotiatedParameters)
        case open(NegotiatedParameters)
        /// We sent connection.close and wait for close-ok.
        case closing(AMQPError?)
        case closed
    }

    enum Action: Equatable {
        case sendProtocolHeader
        case sendStartOk(AMQP.Connection.StartOk)
        /// Send tune-ok and open together; `frameMax` applies to the decoder from now on.
        case sendTuneOkAndOpen(AMQP.Connection.TuneOk, AMQP.Connection.Open, NegotiatedParameters)
        case connected(NegotiatedParameters, serverProperties: FieldTable)
        case sendHeartbeat
        /// The broker closed the connection: answer close-ok, fail everything, close the socket.
        case sendCloseOkAndClose(AMQPError)
        /// Send connection.close; fail everything with the error (nil: a clean close by us).
        case sendClose(AMQP.Connection.Close, failWith: AMQPError?)
        /// Close the socket; fail everything with the error (nil: the clean end of our close).
        case closeSocket(AMQPError?)
        case blocked(String)
        case unblocked
        case wait
    }

    private var state: State = .idle
    private let settings: Settings
    private var serverProperties: FieldTable = [:]
    /// Heartbeat ticks (every half interval) since the last frame from the broker.
    private var ticksWithoutTraffic = 0

    init(settings: Settings) {
        self.settings = settings
    }

    var isOpen: Bool {
        if case .open = self.state { return true }
        return false
    }

    mutating func channelActive() -> Action {
        guard case .idle = self.state else { return .wait }
        self.state = .awaitingStart
        return .sendProtocolHeader
    }

    mutating func frameReceived() {
        self.ticksWithoutTraffic = 0
    }

    mutating func methodReceived(_ method: AMQP.Method) -> Action {
        switch (self.state, method) {
        case (.awaitingStart, .connectionStart(let start)):
            let mechanisms = String(decoding: start.mechanisms, as: UTF8.self).split(separator: " ")
            let mechanism = self.settings.mechanism.rawValue
            guard mechanisms.contains(Substring(mechanism)) else {
                self.state = .closed
                let hint = self.settings.mechanism == .external ? "; it offers EXTERNAL only to a TLS client certificate it verified" : ""
                return .closeSocket(AMQPError(
                    .authenticationFailed, "the broker does not offer \(mechanism) authentication (offers: \(mechanisms.joined(separator: " "))\(hint))"))
            }
            self.serverProperties = start.serverProperties
            self.state = .awaitingTune
            var response: [UInt8] = []
            if self.settings.mechanism == .plain {
                response = [0] + Array(self.settings.username.utf8) + [0] + Array(self.settings.password.utf8)
            }
            return .sendStartOk(AMQP.Connection.StartOk(clientProperties: self.settings.clientProperties, mechanism: mechanism, response: response, locale: "en_US"))

        case (.awaitingTune, .connectionTune(let tune)):
            let negotiated = NegotiatedParameters(
                channelMax: Self.negotiate(self.settings.channelMax, tune.channelMax),
                frameMax: Self.negotiate(self.settings.frameMax, tune.frameMax),
                heartbeat: Self.negotiate(self.settings.heartbeat, tune.heartbeat)
            )
            self.state = .awaitingOpenOk(negotiated)
            return .sendTuneOkAndOpen(
                AMQP.Connection.TuneOk(channelMax: negotiated.channelMax, frameMax: negotiated.frameMax, heartbeat: negotiated.heartbeat),
                AMQP.Connection.Open(virtualHost: self.settings.virtualHost),
                negotiated
            )

        case (.awaitingOpenOk(let negotiated), .connectionOpenOk):
            self.state = .open(negotiated)
            return .connected(negotiated, serverProperties: self.serverProperties)

        case (.closing(let error), .connectionCloseOk):
            self.state = .closed
            return .closeSocket(error)

        case (.closing, .connectionClose):
            // Both sides closed at once: answer, and the socket closes.
            self.state = .closed
            return .sendCloseOkAndClose(AMQPError(.connectionClosed, "connection closed"))

        case (.closing, _):
            return .wait  // everything but close-ok is discarded while closing

        case (.closed, _), (.idle, _):
            return .wait

        case (_, .connectionClose(let close)):
            let error: AMQPError
            if case .awaitingTune = self.state, close.replyCode == ReplyCode.accessRefused {
                error = AMQPError(.authenticationFailed, "the broker refused the credentials of user \(self.settings.username): \(close.replyText)", replyCode: close.replyCode, classID: close.classId, methodID: close.methodId)
            } else {
                error = AMQPError.connectionClosedByServer(close)
            }
            self.state = .closed
            return .sendCloseOkAndClose(error)

        case (.open, .connectionBlocked(let blocked)):
            return .blocked(blocked.reason)
        case (.open, .connectionUnblocked):
            return .unblocked

        default:
            return self.protocolViolation(ProtocolError(.unexpectedFrame, "unexpected \(method.name) on channel 0"))
        }
    }

    /// A frame the connection cannot accept (malformed, or one the protocol forbids here).
    mutating func protocolViolation(_ error: ProtocolError) -> Action {
        switch self.state {
        case .closing, .closed:
            return .wait
        case .idle, .awaitingStart, .awaitingTune, .awaitingOpenOk:
            self.state = .closed
            return .closeSocket(.protocolViolation(error))
        case .open:
            let failure = AMQPError.protocolViolation(error)
            self.state = .closing(failure)
            return .sendClose(AMQP.Connection.Close(replyCode: error.replyCode, replyText: error.message), failWith: failure)
        }
    }

    /// The application closes the connection.
    mutating func closeRequested() -> Action {
        switch self.state {
        case .open:
            self.state = .closing(nil)
            return .sendClose(AMQP.Connection.Close(replyCode: ReplyCode.replySuccess, replyText: "closed by the application"), failWith: nil)
        case .closing, .closed:
            return .wait
        case .idle, .awaitingStart, .awaitingTune, .awaitingOpenOk:
            self.state = .closed
            return .closeSocket(AMQPError(.connectionClosed, "connection closed by the application during the handshake"))
        }
    }

    /// Fires every half heartbeat interval: send a heartbeat, and declare the broker dead
    /// when nothing arrived for two whole intervals (four ticks).
    mutating func heartbeatTimerFired() -> Action {
        guard case .open(let negotiated) = self.state, negotiated.heartbeat > 0 else { return .wait }
        self.ticksWithoutTraffic += 1
        if self.ticksWithoutTraffic >= 4 {
            self.state = .closed
            return .closeSocket(AMQPError(.heartbeatTimeout, "no frame from the broker for \(2 * Int(negotiated.heartbeat)) seconds"))
        }
        return .sendHeartbeat
    }

    /// The socket closed. Returns the error everything still pending fails with.
    mutating func channelInactive() -> AMQPError? {
        defer { self.state = .closed }
        switch self.state {
        case .idle, .awaitingStart:
            return AMQPError(.connectionClosed, "the broker closed the connection before the handshake")
        case .awaitingTune, .awaitingOpenOk:
            // RabbitMQ without `authentication_failure_close` drops the socket after a
            // refused start-ok; a refused vhost arrives as connection.close instead.
            if case .awaitingTune = self.state {
                return AMQPError(.authenticationFailed, "the broker closed the connection after start-ok: wrong credentials for user \(self.settings.username)?")
            }
            return AMQPError(.connectionClosed, "the broker closed the connection during the handshake")
        case .open:
            return AMQPError(.connectionClosed, "connection lost")
        case .closing(let error):
            return error
        case .closed:
            return nil
        }
    }

    /// Tune negotiation: the smaller of the two values, where 0 means "no limit".
    static func negotiate<T: FixedWidthInteger>(_ client: T, _ server: T) -> T {
        if client == 0 { return server }
        if server == 0 { return client }
        return Swift.min(client, server)
    }
}

extension AMQP.Method {
    var name: String {
        "\(self.classID).\(self.methodID)"
    }
}
