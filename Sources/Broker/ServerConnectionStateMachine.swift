import AMQPProtocol
import NIOCore

/// What connection.tune / tune-ok settled.
struct ConnectionTuning: Sendable, Hashable {
    var channelMax: UInt16
    var frameMax: UInt32
    var heartbeat: UInt16
}

/// The server side of a connection's life on channel 0: protocol header, start/start-ok
/// (authentication), tune/tune-ok, open/open-ok, and the close handshakes. Pure: it is
/// given events and answers with the action the handler must carry out.
struct ServerConnectionStateMachine {
    enum State: Hashable {
        case awaitingProtocolHeader
        case awaitingStartOk
        case awaitingTuneOk(user: String)
        case awaitingOpen(user: String, ConnectionTuning)
        case open(user: String, vhost: String, ConnectionTuning)
        /// We sent connection.close; only close / close-ok matter now.
        case closing
        case closed
    }

    enum Action: Hashable {
        case wait
        case sendProtocolHeaderAndClose
        case sendStart(AMQP.Connection.Start)
        case sendTune(AMQP.Connection.Tune)
        case applyTuning(ConnectionTuning)
        case sendOpenOk(user: String, vhost: String)
        /// Send connection.close with this reply and wait for close-ok.
        case sendClose(AMQP.Connection.Close)
        case sendCloseOkAndCloseSocket
        case closeSocket
    }

    /// Credentials and policy the machine authenticates against.
    struct Authenticator {
        var users: [String: BrokerUser]
        var vhosts: Set<String>
        /// user -> vhosts the user has a permission entry for.
        var access: [String: Set<String>]

        init(configuration: BrokerConfiguration) {
            self.users = Dictionary(configuration.users.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
            self.vhosts = Set(configuration.vhosts)
            self.access = [:]
            for permission in configuration.permissions {
                self.access[permission.user, default: []].insert(permission.vhost)
            }
        }
    }

    private(set) var state: State = .awaitingProtocolHeader
    let authenticator: Authenticator
    let serverTuning: ConnectionTuning
    let peerIsLoopback: Bool
    /// Whether the client announced `consumer_cancel_notify` in its capabilities.
    private(set) var clientWantsCancelNotifications = false
    /// Whether the client announced `connection.blocked` (it then gets connection.blocked
    /// and connection.unblocked; others are only not read while blocked).
    private(set) var clientWantsBlockedNotifications = false
    /// What the client sent in connection.start-ok (product, connection_name, ...).
    private(set) var clientProperties: FieldTable = [:]
    /// The user named by the peer's verified TLS client certificate (its subject CN):
    /// SASL EXTERNAL is offered, and logs in as this user, only when there is one.
    private(set) var certificateLogin: String?

    init(authenticator: Authenticator, serverTuning: ConnectionTuning, peerIsLoopback: Bool) {
        self.authenticator = authenticator
        self.serverTuning = serverTuning
        self.peerIsLoopback = peerIsLoopback
    }

    static let serverProperties: FieldTable = [
        "product": .string("Conductor"),
        "version": .string("0.1.0"),
        "platform": .string("Swift"),
        "copyright": .string("Conductor contributors"),
        "information": .string("Embedded AMQP 0-9-1 broker of Conductor"),
        "capabilities": .table(AMQP.capabilities),
    ]

    /// The authenticated user, once known.
    var user: String? {
        switch self.state {
        case .awaitingTuneOk(let user), .awaitingOpen(let user, _), .open(let user, _, _): return user
        default: return nil
        }
    }

    var isOpen: Bool {
        if case .open = self.state { return true }
        return false
    }

    var isClosing: Bool {
        switch self.state {
        case .closing, .closed: return true
        default: return false
        }
    }

    /// `certificateLogin`: see the property; known once the TLS handshake is done, which
    /// is before the first bytes of AMQP arrive.
    mutating func protocolHeaderReceived(_ check: ProtocolHeaderCheck, certificateLogin: String? = nil) -> Action {
        guard case .awaitingProtocolHeader = self.state else { return .wait }
        switch check {
        case .needMoreData:
            return .wait
        case .rejected:
            self.state = .closed
            return .sendProtocolHeaderAndClose
        case .accepted:
            self.state = .awaitingStartOk
            self.certificateLogin = certificateLogin
            let mechanisms = certificateLogin == nil ? "PLAIN AMQPLAIN" : "PLAIN AMQPLAIN EXTERNAL"
            return .sendStart(AMQP.Connection.Start(
                versionMajor: 0, versionMinor: 9, serverProperties: Self.serverProperties,
                mechanisms: Array(mechanisms.utf8), locales: Array("en_US".utf8)
            ))
        }
    }

    mutating func startOkReceived(_ startOk: AMQP.Connection.StartOk) -> Action {
        guard case .awaitingStartOk = self.state else { return self.unexpected(startOk.asMethod) }
        self.clientProperties = startOk.clientProperties
        if case .table(let capabilities)? = startOk.clientProperties["capabilities"] {
            self.clientWantsCancelNotifications = capabilities["consumer_cancel_notify"]?.boolValue ?? false
            self.clientWantsBlockedNotifications = capabilities["connection.blocked"]?.boolValue ?? false
        }
        // password nil: EXTERNAL, the verified certificate stands for it.
        let credentials: (user: String, password: String?)?
        switch startOk.mechanism {
        case "PLAIN":
            // [authzid] NUL authcid NUL passwd
            let parts = startOk.response.split(separator: 0, omittingEmptySubsequences: false)
            if parts.count == 3 {
                credentials = (String(decoding: parts[1], as: UTF8.self), String(decoding: parts[2], as: UTF8.self))
            } else {
                credentials = nil
            }
        case "AMQPLAIN":
            var buffer = ByteBuffer(bytes: startOk.response)
            if let table = try? buffer.readFieldTableBody(),
                let login = table["LOGIN"]?.stringValue, let password = table["PASSWORD"]?.stringValue
            {
                credentials = (login, password)
            } else {
                credentials = nil
            }
        case "EXTERNAL" where self.certificateLogin != nil:
            // As RabbitMQ's rabbitmq_auth_mechanism_ssl: the response (an authzid) is ignored.
            credentials = self.certificateLogin.map { ($0, nil) }
        default:
            return self.close(ReplyCode.commandInvalid, "COMMAND_INVALID - unknown authentication mechanism '\(startOk.mechanism)'", startOk.asMethod)
        }
        let refusal = "ACCESS_REFUSED - Login was refused using authentication mechanism \(startOk.mechanism)."
        guard let credentials, let user = self.authenticator.users[credentials.user],
            credentials.password.map({ user.verify(password: $0) }) ?? true
        else {
            return self.close(ReplyCode.accessRefused, refusal, startOk.asMethod)
        }
        if user.loopbackOnly, !self.peerIsLoopback {
            return self.close(
                ReplyCode.accessRefused,
                "ACCESS_REFUSED - user '\(user.name)' can only connect via localhost", startOk.asMethod
            )
        }
        self.state = .awaitingTuneOk(user: user.name)
        return .sendTune(AMQP.Connection.Tune(
            channelMax: self.serverTuning.channelMax, frameMax: self.serverTuning.frameMax,
            heartbeat: self.serverTuning.heartbeat
        ))
    }

    mutating func tuneOkReceived(_ tuneOk: AMQP.Connection.TuneOk) -> Action {
        guard case .awaitingTuneOk(let user) = self.state else { return self.unexpected(tuneOk.asMethod) }
        let server = self.serverTuning
        if server.channelMax != 0, tuneOk.channelMax > server.channelMax {
            return self.close(ReplyCode.notAllowed, "NOT_ALLOWED - channel_max=\(tuneOk.channelMax) > \(server.channelMax) max", tuneOk.asMethod)
        }
        if server.frameMax != 0, tuneOk.frameMax > server.frameMax {
            return self.close(ReplyCode.notAllowed, "NOT_ALLOWED - frame_max=\(tuneOk.frameMax) > \(server.frameMax) max", tuneOk.asMethod)
        }
        if tuneOk.frameMax != 0, tuneOk.frameMax < AMQP.frameMinSize {
            return self.close(ReplyCode.notAllowed, "NOT_ALLOWED - frame_max=\(tuneOk.frameMax) < \(AMQP.frameMinSize) min size", tuneOk.asMethod)
        }
        let tuning = ConnectionTuning(
            channelMax: tuneOk.channelMax == 0 ? server.channelMax : tuneOk.channelMax,
            frameMax: tuneOk.frameMax == 0 ? server.frameMax : tuneOk.frameMax,
            heartbeat: tuneOk.heartbeat
        )
        self.state = .awaitingOpen(user: user, tuning)
        return .applyTuning(tuning)
    }

    /// `connectionLimit`: the broker's connection limit when it is reached (the open is
    /// then refused with 530, as RabbitMQ refuses one past a vhost's limit).
    mutating func openReceived(_ open: AMQP.Connection.Open, connectionLimit: Int? = nil) -> Action {
        guard case .awaitingOpen(let user, let tuning) = self.state else { return self.unexpected(open.asMethod) }
        guard self.authenticator.vhosts.contains(open.virtualHost) else {
            return self.close(ReplyCode.notAllowed, "NOT_ALLOWED - vhost \(open.virtualHost) not found", open.asMethod)
        }
        guard self.authenticator.access[user]?.contains(open.virtualHost) ?? false else {
            return self.close(
                ReplyCode.notAllowed, "NOT_ALLOWED - access to vhost '\(open.virtualHost)' refused for user '\(user)'",
                open.asMethod
            )
        }
        if let connectionLimit {
            return self.close(
                ReplyCode.notAllowed, "NOT_ALLOWED - connection limit (\(connectionLimit)) is reached", open.asMethod
            )
        }
        self.state = .open(user: user, vhost: open.virtualHost, tuning)
        return .sendOpenOk(user: user, vhost: open.virtualHost)
    }

    mutating func closeReceived(_ close: AMQP.Connection.Close) -> Action {
        switch self.state {
        case .closed: return .wait
        default:
            self.state = .closed
            return .sendCloseOkAndCloseSocket
        }
    }

    mutating func closeOkReceived() -> Action {
        switch self.state {
        case .closing:
            self.state = .closed
            return .closeSocket
        case .closed:
            return .wait
        default:
            return self.close(ReplyCode.unexpectedFrame, "UNEXPECTED_FRAME - connection.close-ok without connection.close", AMQP.Connection.CloseOk().asMethod)
        }
    }

    /// Any other method on channel 0 (or any frame while the handshake is not done).
    mutating func unexpected(_ method: AMQP.Method) -> Action {
        if self.isClosing { return .wait }
        return self.close(ReplyCode.commandInvalid, "COMMAND_INVALID - unexpected method \(method.name) on channel 0", method)
    }

    /// A connection-level error found by the handler or the channels.
    mutating func connectionError(replyCode: UInt16, text: String, classID: UInt16 = 0, methodID: UInt16 = 0) -> Action {
        switch self.state {
        case .closing, .closed: return .wait
        case .awaitingProtocolHeader:
            self.state = .closed
            return .closeSocket
        default:
            self.state = .closing
            return .sendClose(AMQP.Connection.Close(replyCode: replyCode, replyText: text, classId: classID, methodId: methodID))
        }
    }

    /// The broker closes the connection (320): it stops, or an administrator deleted the
    /// connection's user (`reason` is then RabbitMQ's "user 'NAME' is deleted").
    mutating func shutdownRequested(reason: String = "broker shutdown") -> Action {
        self.connectionError(replyCode: ReplyCode.connectionForced, text: "CONNECTION_FORCED - \(reason)")
    }

    private mutating func close(_ code: UInt16, _ text: String, _ method: AMQP.Method) -> Action {
        self.connectionError(replyCode: code, text: text, classID: method.classID, methodID: method.methodID)
    }
}
