import AMQPProtocol
import NIOCore

/// What a synchronous call returns: the reply method, or for basic.get the whole message.
enum CallResult: Sendable, Hashable {
    case method(AMQP.Method)
    case content(Content<AMQP.Method>)
}

/// The client's side of one channel: opening and closing, synchronous calls answered
/// in order (one in flight, the rest queued), content reassembly of deliveries,
/// returns and get-ok, and the server's closes. `Pending` is whatever the handler uses
/// to complete a call (a promise); the machine only hands it back in actions.
struct ClientChannelStateMachine<Pending> {
    private enum State {
        case opening
        case open
        /// We sent channel.close; `Pending` completes on close-ok.
        case closing(Pending?)
        case closed(AMQPError)
    }

    enum Action {
        case send(AMQP.Method)
        case succeed(Pending, CallResult, thenSend: AMQP.Method?)
        case fail(Pending, AMQPError)
        case deliver(Content<AMQP.Method>)
        case returned(Content<AMQP.Method>)
        case confirm(deliveryTag: UInt64, multiple: Bool, ack: Bool)
        case consumerCancelledByServer(String)
        /// The server closed the channel: send close-ok, fail `failing` and consumers.
        case closedByServer(AMQPError, failing: [Pending])
        /// Our close completed: `Pending` (if any) succeeds, `failing` fail with the error.
        case closedByClient(Pending?, failing: [Pending], AMQPError)
        /// The broker broke the protocol: the connection must close with this error.
        case connectionError(ProtocolError)
        case wait
    }

    private var state: State = .opening
    private var calls: [(request: AMQP.Method, pending: Pending)] = []
    private var callsHead = 0
    private var assembler = ContentAssembler<AMQP.Method>()

    init() {}

    var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }

    /// The application sends a synchronous method (channel.open included).
    mutating func callRequested(_ request: AMQP.Method, _ pending: Pending) -> Action {
        switch self.state {
        case .closed(let error):
            return .fail(pending, error)
        case .closing:
            return .fail(pending, AMQPError(.channelClosed, "the channel is closing"))
        case .opening, .open:
            self.calls.append((request, pending))
            return self.calls.count - self.callsHead == 1 ? .send(request) : .wait
        }
    }

    /// The application closes the channel.
    mutating func closeRequested(_ pending: Pending?) -> Action {
        switch self.state {
        case .closed:
            return pending.map { .succeed($0, .method(.channelCloseOk(AMQP.Channel.CloseOk())), thenSend: nil) } ?? .wait
        case .closing:
            return pending.map { .fail($0, AMQPError(.channelClosed, "the channel is already closing")) } ?? .wait
        case .opening, .open:
            self.state = .closing(pending)
            return .send(.channelClose(AMQP.Channel.Close(replyCode: ReplyCode.replySuccess, replyText: "closed by the application")))
        }
    }

    mutating func methodReceived(_ method: AMQP.Method) -> Action {
        if case .closing(let pending) = self.state {
            switch method {
            case .channelCloseOk, .channelClose:
                // A close from the server that crosses ours counts as the reply.
                let error = AMQPError(.channelClosed, "the channel was closed by the application")
                self.state = .closed(error)
                return .closedByClient(pending, failing: self.drainCalls(), error)
            default:
                return .wait  // the spec says: discard everything until close-ok
            }
        }
        if case .closed = self.state {
            return .wait
        }
        if self.assembler.isAssembling {
            return .connectionError(ProtocolError(.unexpectedFrame, "method \(method.name) while a message's content was expected"))
        }
        switch method {
        case .basicDeliver, .basicReturn, .basicGetOk:
            do throws(ProtocolError) {
                try self.assembler.methodReceived(method)
            } catch {
                return .connectionError(error)
            }
            return .wait
        case .channelClose(let close):
            let error = AMQPError.channelClosedByServer(close)
            self.state = .closed(error)
            return .closedByServer(error, failing: self.drainCalls())
        case .basicAck(let ack):
            return .confirm(deliveryTag: ack.deliveryTag, multiple: ack.multiple, ack: true)
        case .basicNack(let nack):
            return .confirm(deliveryTag: nack.deliveryTag, multiple: nack.multiple, ack: false)
        case .basicCancel(let cancel):
            return .consumerCancelledByServer(cancel.consumerTag)
        case .channelFlow(let flow):
            return .send(.channelFlowOk(AMQP.Channel.FlowOk(active: flow.active)))
        default:
            return self.replyReceived(.method(method))
        }
    }

    mutating func headerReceived(_ header: ContentHeader) -> Action {
        guard case .open = self.state else { return .wait }
        do throws(ProtocolError) {
            guard let content = try self.assembler.headerReceived(header) else { return .wait }
            return self.contentCompleted(content)
        } catch {
            return .connectionError(error)
        }
    }

    mutating func bodyReceived(_ body: ByteBuffer) -> Action {
        guard case .open = self.state else { return .wait }
        do throws(ProtocolError) {
            guard let content = try self.assembler.bodyReceived(body) else { return .wait }
            return self.contentCompleted(content)
        } catch {
            return .connectionError(error)
        }
    }

    /// The connection is gone: every pending call fails.
    mutating func connectionClosed(_ error: AMQPError) -> [Pending] {
        var failing = self.drainCalls()
        if case .closing(let pending?) = self.state { failing.append(pending) }
        self.state = .closed(error)
        return failing
    }

    private mutating func contentCompleted(_ content: Content<AMQP.Method>) -> Action {
        switch content.method {
        case .basicDeliver: return .deliver(content)
        case .basicReturn: return .returned(content)
        default: return self.replyReceived(.content(content))
        }
    }

    private mutating func replyReceived(_ result: CallResult) -> Action {
        let reply: AMQP.Method
        switch result {
        case .method(let method): reply = method
        case .content(let content): reply = content.method
        }
        guard self.callsHead < self.calls.count, Self.isReply(reply, to: self.calls[self.callsHead].request) else {
            return .connectionError(ProtocolError(.unexpectedFrame, "unexpected \(reply.name) on a channel"))
        }
        let pending = self.calls[self.callsHead].pending
        self.callsHead += 1
        if case .channelOpenOk = reply, case .opening = self.state {
            self.state = .open
        }
        var next: AMQP.Method? = nil
        if self.callsHead < self.calls.count {
            next = self.calls[self.callsHead].request
        } else {
            self.calls.removeAll(keepingCapacity: true)
            self.callsHead = 0
        }
        return .succeed(pending, result, thenSend: next)
    }

    private mutating func drainCalls() -> [Pending] {
        let pending = self.calls[self.callsHead...].map(\.pending)
        self.calls.removeAll()
        self.callsHead = 0
        return pending
    }

    /// Whether `reply` answers `request`.
    static func isReply(_ reply: AMQP.Method, to request: AMQP.Method) -> Bool {
        switch (request, reply) {
        case (.channelOpen, .channelOpenOk),
             (.exchangeDeclare, .exchangeDeclareOk), (.exchangeDelete, .exchangeDeleteOk),
             (.exchangeBind, .exchangeBindOk), (.exchangeUnbind, .exchangeUnbindOk),
             (.queueDeclare, .queueDeclareOk), (.queueBind, .queueBindOk), (.queueUnbind, .queueUnbindOk),
             (.queuePurge, .queuePurgeOk), (.queueDelete, .queueDeleteOk),
             (.basicQos, .basicQosOk), (.basicConsume, .basicConsumeOk), (.basicCancel, .basicCancelOk),
             (.basicGet, .basicGetOk), (.basicGet, .basicGetEmpty), (.basicRecover, .basicRecoverOk),
             (.txSelect, .txSelectOk), (.txCommit, .txCommitOk), (.txRollback, .txRollbackOk),
             (.confirmSelect, .confirmSelectOk), (.channelFlow, .channelFlowOk):
            return true
        default:
            return false
        }
    }
}
