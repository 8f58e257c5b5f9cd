import AMQPProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// A synchronous call waiting for its reply; basic.consume carries the sink its
/// deliveries go to, registered when consume-ok arrives (before any delivery can).
struct PendingCall {
    let promise: EventLoopPromise<CallResult>
    let consumer: ConsumerSink?
}

/// The one NIO handler of a client connection. It decodes frames, feeds them to the
/// connection and channel state machines and runs their actions; `run` is the only
/// place that writes, closes or completes promises. Lives on its event loop.
final class AMQPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct ChannelEntry {
        var machine = ClientChannelStateMachine<PendingCall>()
        let handle: AMQPChannel
        var consumers: [String: ConsumerSink] = [:]
    }

    private let sessionID: UInt64
    private var connection: ClientConnectionStateMachine
    private var decoder: FrameDecoder
    private var inbound: ByteBuffer? = nil
    private var channels: [UInt16: ChannelEntry] = [:]
    private let outbox: NIOLockedValueBox<Outbox>
    private let events: SessionEvents
    private let handshakeTimeout: TimeAmount
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var handshakePromise: EventLoopPromise<(NegotiatedParameters, FieldTable)>?
    private var closePromises: [EventLoopPromise<Void>] = []
    private var writabilityWaiters: [EventLoopPromise<Void>] = []
    private var heartbeatTask: RepeatedTask?
    private var handshakeTimeoutTask: Scheduled<Void>?
    private var needsFlush = false
    private var inRead = false
    private var finished = false

    init(sessionID: UInt64, settings: ClientConnectionStateMachine.Settings, outbox: NIOLockedValueBox<Outbox>, events: SessionEvents, handshakeTimeout: TimeAmount, logger: Logger) {
        self.sessionID = sessionID
        self.connection = ClientConnectionStateMachine(settings: settings)
        self.decoder = FrameDecoder(maximumFrameSize: settings.frameMax == 0 ? 0 : Swift.max(settings.frameMax, AMQP.frameMinSize))
        self.outbox = outbox
        self.events = events
        self.handshakeTimeout = handshakeTimeout
        var logger = logger
        logger[metadataKey: "amqp_session"] = "\(sessionID)"
        self.logger = logger
    }

    /// Completes when the handshake does (kept apart from the promise, which is
    /// cleared once completed).
    private(set) var handshakeFuture: EventLoopFuture<(NegotiatedParameters, FieldTable)>?
    /// A TLS failure seen before the socket closed (reported as `.tlsFailed`).
    private var tlsError: (any Error)?

    // MARK: pipeline events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let handshakePromise = context.eventLoop.makePromise(of: (NegotiatedParameters, FieldTable).self)
        self.handshakePromise = handshakePromise
        self.handshakeFuture = handshakePromise.futureResult
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.handshakeTimeoutTask = context.eventLoop.scheduleTask(in: self.handshakeTimeout) {
            let handler = loopBound.value
            guard let promise = handler.handshakePromise else { return }
            handler.handshakePromise = nil
            promise.fail(AMQPError(.timeout, "the AMQP handshake did not finish in time"))
            handler.context?.close(promise: nil)
        }
        if context.channel.isActive {
            self.run(self.connection.channelActive())
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.run(self.connection.channelActive())
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        if self.inbound == nil {
            self.inbound = bytes
        } else {
            var bytes = bytes
            self.inbound!.writeBuffer(&bytes)
        }
        self.inRead = true
        defer { self.inRead = false }
        while !self.finished, var buffer = self.inbound {
            self.inbound = nil  // keep the buffer uniquely referenced while decoding
            let frame: Frame?
            do throws(ProtocolError) {
                frame = try self.decoder.decodeFrame(buffer: &buffer)
            } catch {
                self.inbound = nil
                self.run(self.connection.protocolViolation(error))
                return
            }
            if buffer.readableBytes > 0 { self.inbound = buffer }
            guard let frame else { break }
            self.frameReceived(frame)
        }
        if var buffer = self.inbound, buffer.readerIndex > 64 * 1024 {
            buffer.discardReadBytes()
            self.inbound = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flushIfNeeded()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        self.outbox.withLockedValue { $0.isWritable = writable }
        if writable {
            let waiters = self.writabilityWaiters
            self.writabilityWaiters = []
            waiters.forEach { $0.succeed() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        var error = self.connection.channelInactive()
        if let tlsError = self.tlsError, error?.code != .tlsFailed {
            // The socket closed because TLS failed, not because of AMQP.
            error = AMQPError(.tlsFailed, "TLS failed: \(tlsError)")
        }
        self.finish(error)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("connection error", metadata: ["error": "\(error)"])
        if self.tlsError == nil, error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            self.tlsError = error
        }
        context.close(promise: nil)
    }

    // MARK: frames

    private func frameReceived(_ frame: Frame) {
        self.connection.frameReceived()
        switch frame {
        case .heartbeat:
            return
        case .method(0, let method):
            self.run(self.connection.methodReceived(method))
        case .method(let channelID, let method):
            self.withChannel(channelID) { $0.machine.methodReceived(method) }
        case .header(let channelID, let header):
            self.withChannel(channelID) { $0.machine.headerReceived(header) }
        case .body(let channelID, let body):
            self.withChannel(channelID) { $0.machine.bodyReceived(body) }
        }
    }

    private func withChannel(_ channelID: UInt16, _ event: (inout ChannelEntry) -> ClientChannelStateMachine<PendingCall>.Action) {
        guard self.channels[channelID] != nil else {
            if channelID == 0 {
                self.run(self.connection.protocolViolation(ProtocolError(.unexpectedFrame, "content frame on channel 0")))
            } else {
                self.run(self.connection.protocolViolation(ProtocolError(.unexpectedFrame, "frame on channel \(channelID), which is not open")))
            }
            return
        }
        let action = event(&self.channels[channelID]!)
        self.run(action, channelID: channelID)
    }

    // MARK: requests from the API (on the event loop)

    func openChannel(_ channelID: UInt16, handle: AMQPChannel, _ call: PendingCall) {
        guard !self.finished else { return call.promise.fail(self.closedError) }
        guard self.channels[channelID] == nil else {
            return call.promise.fail(AMQPError(.invalidArgument, "channel \(channelID) is already open"))
        }
        self.channels[channelID] = ChannelEntry(handle: handle)
        self.call(channelID, .channelOpen(AMQP.Channel.Open()), call)
    }

    func call(_ channelID: UInt16, _ method: AMQP.Method, _ call: PendingCall) {
        guard !self.finished else { return call.promise.fail(self.closedError) }
        guard self.channels[channelID] != nil else {
            return call.promise.fail(AMQPError(.channelClosed, "channel \(channelID) is not open"))
        }
        self.drainOutbox()
        self.withChannel(channelID) { $0.machine.callRequested(method, call) }
        self.flushIfNeeded()
    }

    func closeChannel(_ channelID: UInt16, _ call: PendingCall) {
        guard !self.finished, self.channels[channelID] != nil else {
            return call.promise.succeed(.method(.channelCloseOk(AMQP.Channel.CloseOk())))
        }
        self.drainOutbox()
        self.withChannel(channelID) { $0.machine.closeRequested(call) }
        self.flushIfNeeded()
    }

    func closeConnection(_ promise: EventLoopPromise<Void>) {
        guard !self.finished else { return promise.succeed() }
        self.closePromises.append(promise)
        self.drainOutbox()
        self.run(self.connection.closeRequested())
        self.flushIfNeeded()
    }

    func flushOutbox() {
        self.drainOutbox()
        self.flushIfNeeded()
    }

    func waitUntilWritable(_ promise: EventLoopPromise<Void>) {
        guard !self.finished, let context else { return promise.fail(self.closedError) }
        self.flushOutbox()
        if context.channel.isWritable {
            promise.succeed()
        } else {
            self.writabilityWaiters.append(promise)
        }
    }

    private var closedError: AMQPError {
        self.outbox.withLockedValue { $0.closed } ?? AMQPError(.connectionClosed, "the connection is closed")
    }

    // MARK: actions

    private func run(_ action: ClientConnectionStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .sendProtocolHeader:
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(bytes: AMQP.protocolHeader)), promise: nil)
        case .sendStartOk(let startOk):
            self.writeMethod(0, .connectionStartOk(startOk))
        case .sendTuneOkAndOpen(let tuneOk, let open, let negotiated):
            self.decoder.maximumFrameSize = negotiated.frameMax
            self.outbox.withLockedValue { $0.frameMax = negotiated.frameMax == 0 ? 131_072 : negotiated.frameMax }
            self.writeMethod(0, .connectionTuneOk(tuneOk))
            self.writeMethod(0, .connectionOpen(open))
        case .connected(let negotiated, let serverProperties):
            self.handshakeTimeoutTask?.cancel()
            self.handshakeTimeoutTask = nil
            if negotiated.heartbeat > 0 {
                let interval = TimeAmount.milliseconds(Int64(negotiated.heartbeat) * 500)
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                self.heartbeatTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                    let handler = loopBound.value
                    handler.run(handler.connection.heartbeatTimerFired())
                    handler.flushIfNeeded()
                }
            }
            let promise = self.handshakePromise
            self.handshakePromise = nil
            promise?.succeed((negotiated, serverProperties))
        case .sendHeartbeat:
            var buffer = context.channel.allocator.buffer(capacity: 8)
            try? Frame.heartbeat.encode(into: &buffer)
            self.write(buffer)
        case .sendCloseOkAndClose(let error):
            self.markClosed(error)
            self.writeMethod(0, .connectionCloseOk(AMQP.Connection.CloseOk()))
            self.needsFlush = false
            context.flush()
            context.close(promise: nil)
            self.finish(error)
        case .sendClose(let close, let error):
            // Our own publishes may still be queued; they go first so a clean close loses nothing.
            if error == nil { self.drainOutbox() }
            self.markClosed(error ?? AMQPError(.connectionClosed, "the connection was closed by the application"))
            self.writeMethod(0, .connectionClose(close))
            self.flushIfNeeded()
            if let error { self.failEverything(error) }
            // Don't wait forever for close-ok from a broker that went silent.
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .seconds(5)) {
                loopBound.value.close(promise: nil)
            }
        case .closeSocket(let error):
            if let error { self.markClosed(error) }
            context.close(promise: nil)
            self.finish(error)
        case .blocked(let reason):
            self.events.blocked(reason)
        case .unblocked:
            self.events.blocked(nil)
        case .wait:
            break
        }
    }

    private func run(_ action: ClientChannelStateMachine<PendingCall>.Action, channelID: UInt16) {
        switch action {
        case .send(let method):
            self.writeMethod(channelID, method)
        case .succeed(let call, let result, let next):
            if case .method(.basicConsumeOk(let ok)) = result, let sink = call.consumer {
                self.channels[channelID]?.consumers[ok.consumerTag] = sink
            }
            if case .method(.basicCancelOk(let ok)) = result {
                self.channels[channelID]?.consumers.removeValue(forKey: ok.consumerTag)?.continuation.finish()
            }
            if let next { self.writeMethod(channelID, next) }
            if case .method(.channelCloseOk) = result { self.channels[channelID] = nil }
            call.promise.succeed(result)
        case .fail(let call, let error):
            call.promise.fail(error)
        case .deliver(let content):
            guard case .basicDeliver(let deliver) = content.method, let sink = self.channels[channelID]?.consumers[deliver.consumerTag] else {
                return
            }
            sink.continuation.yield(AMQPMessage(
                body: content.body, properties: content.properties, deliveryTag: deliver.deliveryTag,
                redelivered: deliver.redelivered, exchange: deliver.exchange, routingKey: deliver.routingKey,
                consumerTag: deliver.consumerTag, messageCount: nil, channel: sink.channel, sessionID: self.sessionID
            ))
        case .returned(let content):
            guard case .basicReturn(let ret) = content.method, let handle = self.channels[channelID]?.handle else { return }
            handle.returnsContinuation.yield(ReturnedMessage(
                replyCode: ret.replyCode, replyText: ret.replyText, exchange: ret.exchange,
                routingKey: ret.routingKey, properties: content.properties, body: content.body
            ))
        case .confirm(let tag, let multiple, let ack):
            let resolutions = self.outbox.withLockedValue { $0.confirms[channelID]?.confirmReceived(deliveryTag: tag, multiple: multiple, ack: ack) } ?? []
            for resolution in resolutions {
                switch resolution {
                case .message(.message(let continuation), let acked):
                    if acked {
                        continuation.resume()
                    } else {
                        continuation.resume(throwing: AMQPError(.messageNacked, "the broker nacked the message"))
                    }
                case .batch(.batch(let continuation), let nacked):
                    continuation.resume(returning: nacked)
                case .message(.batch(let continuation), _):
                    continuation.resume(returning: [])
                case .batch(.message(let continuation), _):
                    continuation.resume()
                }
            }
        case .consumerCancelledByServer(let tag):
            // The sequence stays open: the channel decides whether to consume again or end it.
            guard let entry = self.channels[channelID], let sink = self.channels[channelID]?.consumers.removeValue(forKey: tag) else { return }
            entry.handle.consumerCancelledByServer(tag, sink: sink)
        case .closedByServer(let error, let failing):
            self.writeMethod(channelID, .channelCloseOk(AMQP.Channel.CloseOk()))
            failing.forEach { $0.promise.fail(error) }
            self.channelGone(channelID, error)
        case .closedByClient(let call, let failing, let error):
            failing.forEach { $0.promise.fail(error) }
            self.channelGone(channelID, error)
            call?.promise.succeed(.method(.channelCloseOk(AMQP.Channel.CloseOk())))
        case .connectionError(let error):
            self.run(self.connection.protocolViolation(error))
        case .wait:
            break
        }
    }

    /// A channel closed for good: its consumers end, its confirm waiters fail.
    private func channelGone(_ channelID: UInt16, _ error: AMQPError) {
        guard let entry = self.channels.removeValue(forKey: channelID) else { return }
        let waiters = self.outbox.withLockedValue { outbox -> [ConfirmWaiter] in
            guard var tracker = outbox.confirms.removeValue(forKey: channelID) else { return [] }
            return tracker.failAll()
        }
        Self.fail(waiters, error)
        entry.handle.closed(error, consumers: Array(entry.consumers.values))
    }

    private static func fail(_ waiters: [ConfirmWaiter], _ error: AMQPError) {
        for waiter in waiters {
            switch waiter {
            case .message(let continuation): continuation.resume(throwing: error)
            case .batch(let continuation): continuation.resume(throwing: error)
            }
        }
    }

    private func markClosed(_ error: AMQPError) {
        self.outbox.withLockedValue { outbox in
            if outbox.closed == nil { outbox.closed = error }
        }
    }

    /// Fails every pending call and waiter (the connection is going away).
    private func failEverything(_ error: AMQPError) {
        let channels = self.channels
        for (channelID, var entry) in channels {
            entry.machine.connectionClosed(error).forEach { $0.promise.fail(error) }
            self.channels[channelID] = entry
        }
        let waiters = self.outbox.withLockedValue { outbox in
            var waiters: [ConfirmWaiter] = []
            for key in outbox.confirms.keys { waiters += outbox.confirms[key]!.failAll() }
            return waiters
        }
        Self.fail(waiters, error)
        let writability = self.writabilityWaiters
        self.writabilityWaiters = []
        writability.forEach { $0.fail(error) }
    }

    /// The socket is closed (or closing): fail what is left and tell the owner, once.
    private func finish(_ error: AMQPError?) {
        guard !self.finished else { return }
        self.finished = true
        // Closing the socket re-enters through channelInactive; the first error recorded wins.
        let error = error ?? self.outbox.withLockedValue { $0.closed }
        let failure = error ?? AMQPError(.connectionClosed, "the connection was closed by the application")
        self.markClosed(failure)
        self.heartbeatTask?.cancel()
        self.handshakeTimeoutTask?.cancel()
        self.failEverything(failure)
        self.channels.removeAll()
        if let promise = self.handshakePromise {
            self.handshakePromise = nil
            promise.fail(failure)
        }
        let closePromises = self.closePromises
        self.closePromises = []
        closePromises.forEach { $0.succeed() }
        self.events.closed(self.sessionID, error)
    }

    // MARK: writing

    private func writeMethod(_ channelID: UInt16, _ method: AMQP.Method) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do throws(ProtocolError) {
            try buffer.writeMethodFrame(channel: channelID, method)
        } catch {
            self.logger.error("cannot encode \(method.name): \(error)")
            return
        }
        self.write(buffer)
    }

    private func write(_ buffer: ByteBuffer) {
        guard let context else { return }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
        self.needsFlush = true
    }

    private func drainOutbox() {
        let buffer: ByteBuffer? = self.outbox.withLockedValue { outbox in
            outbox.flushScheduled = false
            guard outbox.buffer.readableBytes > 0 else { return nil }
            let taken = outbox.buffer
            outbox.buffer = ByteBuffer()
            return taken
        }
        if let buffer { self.write(buffer) }
    }

    private func flushIfNeeded() {
        guard self.needsFlush, !self.inRead, let context else { return }
        self.needsFlush = false
        context.flush()
    }
}

@available(*, unavailable)
extension AMQPConnectionHandler: Sendable {}
