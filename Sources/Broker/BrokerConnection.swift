import AMQPProtocol
import Logging
import NIOCore

/// The NIO handler of one client connection. It decodes frames straight from the
/// accumulated input, feeds them to the connection state machine and the channels, and
/// buffers every write in one outbound buffer flushed once per read burst.
final class BrokerConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let core: BrokerCore
    private var machine: ServerConnectionStateMachine
    private var logger: Logger
    private var decoder: FrameDecoder
    private var inbound: ByteBuffer?
    private var outbound: ByteBuffer
    private var context: ChannelHandlerContext?
    private var channels: [UInt16: ServerChannel] = [:]
    private(set) var vhost: VirtualHost?
    private var openedAccess: AccessControl?
    var exclusiveQueues: [BrokerQueue] = []

    /// The user's permissions in the vhost (nil before connection.open), renewed when the
    /// admin API changed any: RabbitMQ checks its current permissions at every operation.
    var access: AccessControl? {
        guard let current = self.openedAccess else { return nil }
        guard current.generation != self.core.accessGeneration else { return current }
        let renewed = self.core.accessControl(user: current.user, vhost: current.vhost)
        self.openedAccess = renewed
        return renewed
    }
    private var tuning: ConnectionTuning
    private var isReading = false
    private var isDirty = false
    private var isTornDown = false
    private var channelsWithConfirms: [ServerChannel] = []
    private var lastReadAt = NIODeadline.now()
    private var lastWriteAt = NIODeadline.now()
    private var heartbeatTask: Scheduled<Void>?
    /// Queues (and the flow controller) that currently stop us reading this connection.
    private var flowBlockers: [ObjectIdentifier] = []
    /// A `read` held back while blocked, passed on when the last blocker goes.
    private var heldRead = false
    /// Whether we told the client connection.blocked (and owe it connection.unblocked).
    private var sentBlocked = false
    /// For `conductor broker list-connections` and the metrics.
    let peer: String
    let isTLS: Bool
    let connectedAt = ContinuousClock.now
    private(set) var publishedCount = 0
    private(set) var deliveredCount = 0
    /// Per channel, when its oldest unconfirmed publish arrived (confirm latency metric).
    private var confirmBatchStarts: [(channel: UInt16, since: ContinuousClock.Instant)] = []

    /// Bytes that may wait in `outbound` before deliveries to this connection pause (a
    /// consumer that does not read cannot grow the broker's memory: see `canDeliver`).
    static let outboundDeliveryLimit = 1 << 20

    init(core: BrokerCore, peerIsLoopback: Bool, logger: Logger, peer: String = "?", isTLS: Bool = false) {
        self.core = core
        self.peer = peer
        self.isTLS = isTLS
        let configuration = core.configuration
        self.tuning = ConnectionTuning(channelMax: configuration.channelMax, frameMax: configuration.frameMax, heartbeat: configuration.heartbeat)
        self.machine = ServerConnectionStateMachine(authenticator: core.authenticator, serverTuning: self.tuning, peerIsLoopback: peerIsLoopback)
        self.decoder = FrameDecoder(maximumFrameSize: max(configuration.frameMax, AMQP.frameMinSize))
        self.logger = logger
        self.outbound = ByteBuffer()
    }

    var closeFuture: EventLoopFuture<Void>? { self.context?.channel.closeFuture }

    var wantsCancelNotifications: Bool { self.machine.clientWantsCancelNotifications }

    var user: String? { self.machine.user }
    var isOpen: Bool { self.machine.isOpen }
    var clientProperties: FieldTable { self.machine.clientProperties }
    var negotiated: ConnectionTuning { self.tuning }
    var openChannels: [ServerChannel] { self.channels.keys.sorted().compactMap { self.channels[$0] } }
    var isBlockedByFlow: Bool { !self.flowBlockers.isEmpty }

    // MARK: - NIO events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.outbound = context.channel.allocator.buffer(capacity: 16 * 1024)
        self.core.connections[ObjectIdentifier(self)] = self
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.tearDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.tearDown()
        self.context = nil
    }

    /// Deliveries pause while our own buffer or the socket's holds too much (the peer
    /// does not read fast enough); they resume when the channel is writable again.
    var canDeliver: Bool {
        guard let context = self.context, !self.isTornDown else { return false }
        return self.outbound.readableBytes < Self.outboundDeliveryLimit && context.channel.isWritable
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.resumeDeliveries() }
        context.fireChannelWritabilityChanged()
    }

    private func resumeDeliveries() {
        guard !self.isTornDown else { return }
        for channel in self.channels.values where !channel.isClosing { channel.dispatchConsumerQueues() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.lastReadAt = .now()
        self.isReading = true
        if self.machine.isClosing, case .closed = self.machine.state { return }
        if var pending = self.inbound, pending.readableBytes > 0 {
            self.inbound = nil
            if case .awaitingProtocolHeader = self.machine.state {
                pending.writeBuffer(&incoming)
                incoming = pending
            } else {
                // A frame straddles two reads: complete it from the new bytes and decode
                // it on its own; the rest is decoded straight from the read buffer.
                guard self.completeStraddlingFrame(&pending, from: &incoming, context: context) else { return }
            }
        }
        if case .awaitingProtocolHeader = self.machine.state {
            let check = incoming.readAMQPProtocolHeader()
            self.run(self.machine.protocolHeaderReceived(check, certificateLogin: self.isTLS ? Self.certificateLogin(context, verifyPeer: self.core.configuration.tls?.verifyPeer ?? false) : nil))
            switch check {
            case .accepted: break
            case .needMoreData: self.keepPartial(incoming, context: context); return
            case .rejected: return
            }
        }
        guard self.decodeFrames(&incoming) else { return }
        if incoming.readableBytes > 0 { self.keepPartial(incoming, context: context) }
    }

    /// Decodes and handles every whole frame in `buffer`. False when the connection
    /// stopped taking input (error, close); the rest of the input is then dropped.
    private func decodeFrames(_ buffer: inout ByteBuffer) -> Bool {
        while !self.isTornDown {
            let frame: Frame?
            do {
                frame = try self.decoder.decodeFrame(buffer: &buffer)
            } catch {
                self.run(self.machine.connectionError(replyCode: error.replyCode, text: "\(error.message)"))
                // After a connection error only close / close-ok are read; the decoder
                // would fail again on the same bytes, so the input is dropped.
                return false
            }
            guard let frame else { return true }
            self.frameReceived(frame)
            if case .closed = self.machine.state { return false }
        }
        return false
    }

    /// The unfinished frame at the end of a read is copied into a buffer of its own: the
    /// read buffer stays shared only with decoded message bodies and is never appended
    /// to (which would copy all of it).
    private func keepPartial(_ partial: ByteBuffer, context: ChannelHandlerContext) {
        var partial = partial
        let frameSize = Swift.min(Self.bytesToComplete(partial) + partial.readableBytes, Int(self.decoder.maximumFrameSize))
        var own = context.channel.allocator.buffer(capacity: Swift.max(frameSize, partial.readableBytes, 64))
        own.writeBuffer(&partial)
        self.inbound = own
    }

    /// Bytes still missing from the frame `partial` begins (its 7-byte header first).
    private static func bytesToComplete(_ partial: ByteBuffer) -> Int {
        guard partial.readableBytes >= 7, let size = partial.getInteger(at: partial.readerIndex + 3, as: UInt32.self) else {
            return Swift.max(0, 7 - partial.readableBytes)
        }
        return Swift.max(0, Int(size) + AMQP.frameOverhead - partial.readableBytes)
    }

    /// Moves just enough bytes from `incoming` into `pending` to finish its frame, and
    /// handles that frame. Keeps `pending` for the next read if `incoming` runs out.
    private func completeStraddlingFrame(_ pending: inout ByteBuffer, from incoming: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        while true {
            if pending.readableBytes >= 7 {
                // Validates the header (frame_max) before collecting a body for it.
                let frame: Frame?
                do {
                    frame = try self.decoder.decodeFrame(buffer: &pending)
                } catch {
                    self.run(self.machine.connectionError(replyCode: error.replyCode, text: "\(error.message)"))
                    return false
                }
                if let frame {
                    self.frameReceived(frame)
                    if self.isTornDown { return false }
                    if case .closed = self.machine.state { return false }
                    return true
                }
            }
            let missing = Self.bytesToComplete(pending)
            guard incoming.readableBytes >= missing else {
                pending.writeBuffer(&incoming)
                self.inbound = pending
                return false
            }
            var piece = incoming.readSlice(length: missing)!
            pending.writeBuffer(&piece)
        }
    }

    /// With auto-read, NIO asks for the next read after each read burst; while flow
    /// control blocks this connection the request is held, so the socket is not read
    /// and TCP pushes back on the publisher.
    func read(context: ChannelHandlerContext) {
        if self.flowBlockers.isEmpty {
            context.read()
        } else {
            self.heldRead = true
        }
    }

    /// Stops reading this connection until `unblockReading(by:)` with the same blocker.
    /// Returns false (and does nothing) if it is already blocked by it, or consumes:
    /// its acks may be what the blocker waits for.
    func blockReading(by blocker: ObjectIdentifier) -> Bool {
        guard !self.isTornDown, !self.flowBlockers.contains(blocker) else { return false }
        for channel in self.channels.values where channel.isConsuming { return false }
        self.flowBlockers.append(blocker)
        return true
    }

    func unblockReading(by blocker: ObjectIdentifier) {
        guard let index = self.flowBlockers.firstIndex(of: blocker) else { return }
        self.flowBlockers.remove(at: index)
        if self.flowBlockers.isEmpty, self.heldRead, let context = self.context {
            self.heldRead = false
            // The silence while blocked was ours, not the peer's.
            self.lastReadAt = .now()
            context.read()
        }
    }

    var isReadingBlocked: Bool { !self.flowBlockers.isEmpty }

    /// connection.blocked, to a client that announced the capability.
    func notifyBlocked(reason: String) {
        guard self.machine.isOpen, self.machine.clientWantsBlockedNotifications, !self.sentBlocked else { return }
        self.sentBlocked = true
        self.writeMethod(channel: 0, .connectionBlocked(.init(reason: reason)))
    }

    /// connection.unblocked, after a connection.blocked.
    func notifyUnblocked() {
        guard self.sentBlocked, !self.isTornDown else { return }
        self.sentBlocked = false
        if self.machine.isOpen { self.writeMethod(channel: 0, .connectionUnblocked(.init())) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.isReading = false
        if !self.channelsWithConfirms.isEmpty {
            for channel in self.channelsWithConfirms { channel.flushConfirms() }
            self.channelsWithConfirms.removeAll(keepingCapacity: true)
        }
        self.flush()
        self.core.flushDirtyConnections()
    }

    // MARK: - Frames

    private func frameReceived(_ frame: Frame) {
        switch frame {
        case .heartbeat:
            return
        case .method(0, let method):
            self.connectionMethodReceived(method)
        case .method(let id, let method):
            guard self.machine.isOpen else {
                if !self.machine.isClosing {
                    self.run(self.machine.connectionError(replyCode: ReplyCode.channelError, text: "CHANNEL_ERROR - expected 'connection.open'", classID: method.classID, methodID: method.methodID))
                }
                return
            }
            self.channelMethodReceived(id, method)
        case .header(let id, let header):
            let limit = self.core.configuration.limits.maxMessageSize
            self.contentFrame(id) { channel throws(BrokerError) in
                if limit > 0, header.bodySize > UInt64(limit) {
                    throw .preconditionFailed("message size \(header.bodySize) is larger than configured max size \(limit)")
                }
                self.publishedCount += 1
                self.core.statistics.published.increment()
                try channel.headerReceived(header)
            }
        case .body(let id, let body):
            self.contentFrame(id) { channel throws(BrokerError) in try channel.bodyReceived(body) }
        }
    }

    private func connectionMethodReceived(_ method: AMQP.Method) {
        switch method {
        case .connectionStartOk(let startOk): self.run(self.machine.startOkReceived(startOk))
        case .connectionSecureOk: self.run(self.machine.unexpected(method))
        case .connectionTuneOk(let tuneOk): self.run(self.machine.tuneOkReceived(tuneOk))
        case .connectionOpen(let open):
            let limit = self.core.configuration.limits.maxConnections
            let reached = limit > 0 && self.core.connections.values.lazy.filter(\.isOpen).count >= limit
            self.run(self.machine.openReceived(open, connectionLimit: reached ? limit : nil))
        case .connectionClose(let close): self.run(self.machine.closeReceived(close))
        case .connectionCloseOk: self.run(self.machine.closeOkReceived())
        default: self.run(self.machine.unexpected(method))
        }
    }

    private func contentFrame(_ id: UInt16, _ body: (ServerChannel) throws(BrokerError) -> Void) {
        guard !self.machine.isClosing else { return }
        guard id != 0, self.machine.isOpen else {
            self.run(self.machine.connectionError(replyCode: ReplyCode.unexpectedFrame, text: "UNEXPECTED_FRAME - content frame on channel \(id)"))
            return
        }
        guard let channel = self.channels[id] else {
            self.run(self.machine.connectionError(replyCode: ReplyCode.channelError, text: "CHANNEL_ERROR - content on unopened channel \(id)"))
            return
        }
        if channel.isClosing { return }
        do {
            try body(channel)
        } catch {
            self.channelFailed(channel, error, classID: AMQP.Basic.classID, methodID: AMQP.Basic.Publish.methodID)
        }
    }

    private func channelMethodReceived(_ id: UInt16, _ method: AMQP.Method) {
        if self.machine.isClosing { return }
        guard let channel = self.channels[id] else {
            guard case .channelOpen = method else {
                self.run(self.machine.connectionError(replyCode: ReplyCode.channelError, text: "CHANNEL_ERROR - expected 'channel.open' on channel \(id)", classID: method.classID, methodID: method.methodID))
                return
            }
            if self.tuning.channelMax != 0, id > self.tuning.channelMax {
                self.run(self.machine.connectionError(replyCode: ReplyCode.notAllowed, text: "NOT_ALLOWED - channel number \(id) exceeds channel_max \(self.tuning.channelMax)", classID: method.classID, methodID: method.methodID))
                return
            }
            self.channels[id] = ServerChannel(id: id, connection: self)
            self.writeMethod(channel: id, .channelOpenOk(.init()))
            return
        }
        if channel.isClosing {
            // After our channel.close only close / close-ok count.
            switch method {
            case .channelCloseOk:
                self.channels[id] = nil
            case .channelClose:
                self.channels[id] = nil
                self.writeMethod(channel: id, .channelCloseOk(.init()))
            default:
                break
            }
            return
        }
        switch method {
        case .channelClose:
            channel.isClosing = true
            channel.tearDown()
            self.channels[id] = nil
            self.writeMethod(channel: id, .channelCloseOk(.init()))
        case .channelCloseOk:
            self.run(self.machine.connectionError(replyCode: ReplyCode.channelError, text: "CHANNEL_ERROR - unexpected channel.close-ok", classID: method.classID, methodID: method.methodID))
        default:
            if channel.assembler.isAssembling {
                self.run(self.machine.connectionError(replyCode: ReplyCode.unexpectedFrame, text: "UNEXPECTED_FRAME - expected content header for class 60, got \(method.name)", classID: method.classID, methodID: method.methodID))
                return
            }
            do {
                try channel.methodReceived(method)
            } catch {
                self.channelFailed(channel, error, classID: method.classID, methodID: method.methodID)
            }
        }
    }

    /// Closes `channel` with `error` outside of a method it received (the store failed
    /// while a commit waited for it).
    func failChannel(_ channel: ServerChannel, _ error: BrokerError) {
        self.channelFailed(channel, error, classID: 0, methodID: 0)
    }

    private func channelFailed(_ channel: ServerChannel, _ error: BrokerError, classID: UInt16, methodID: UInt16) {
        switch error.scope {
        case .connection:
            self.run(self.machine.connectionError(replyCode: error.replyCode, text: error.text, classID: classID, methodID: methodID))
        case .channel:
            channel.isClosing = true
            channel.tearDown()
            self.writeMethod(channel: channel.id, .channelClose(.init(replyCode: error.replyCode, replyText: error.text, classId: classID, methodId: methodID)))
        }
    }

    // MARK: - Actions

    private func run(_ action: ServerConnectionStateMachine.Action) {
        switch action {
        case .wait:
            break
        case .sendProtocolHeaderAndClose:
            self.outbound.writeBytes(AMQP.protocolHeader)
            self.flushAndClose()
        case .sendStart(let start):
            self.writeMethod(channel: 0, start.asMethod)
        case .sendTune(let tune):
            self.writeMethod(channel: 0, tune.asMethod)
        case .applyTuning(let tuning):
            self.tuning = tuning
            self.decoder.maximumFrameSize = tuning.frameMax
            self.startHeartbeats(interval: tuning.heartbeat)
        case .sendOpenOk(let user, let vhost):
            self.vhost = self.core.vhosts[vhost]
            self.openedAccess = self.core.accessControl(user: user, vhost: vhost)
            self.logger[metadataKey: "amqp_user"] = "\(user)"
            self.writeMethod(channel: 0, .connectionOpenOk(.init()))
        case .sendClose(let close):
            self.logger.debug("closing connection", metadata: ["amqp_reply_code": "\(close.replyCode)", "amqp_reply_text": "\(close.replyText)"])
            self.closeAllChannels()
            self.writeMethod(channel: 0, close.asMethod)
            // A peer that never answers the close is dropped after a while.
            if let channel = self.context?.channel {
                channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
            }
        case .sendCloseOkAndCloseSocket:
            self.closeAllChannels()
            self.writeMethod(channel: 0, .connectionCloseOk(.init()))
            self.flushAndClose()
        case .closeSocket:
            self.flushAndClose()
        }
    }

    // MARK: - Writing

    func writeMethod(channel: UInt16, _ method: AMQP.Method) {
        switch method {
        case .basicAck, .basicNack:
            // From a server these are publisher confirms.
            self.core.statistics.confirmed.increment()
            if let index = self.confirmBatchStarts.firstIndex(where: { $0.channel == channel }) {
                let elapsed = (ContinuousClock.now - self.confirmBatchStarts[index].since).components
                self.core.statistics.confirmLatency.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
                self.confirmBatchStarts.remove(at: index)
            }
        case .connectionOpenOk:
            self.core.statistics.connectionsOpened.increment()
        default:
            break
        }
        do {
            try self.outbound.writeMethodFrame(channel: channel, method)
        } catch {
            self.logger.error("cannot encode \(method.name): \(error)")
        }
        self.markDirty()
    }

    func writeContent(channel: UInt16, method: AMQP.Method, properties: BasicProperties, body: ByteBuffer) {
        if case .basicReturn = method {} else {
            self.deliveredCount += 1
            self.core.statistics.delivered.increment()
        }
        do {
            try self.outbound.writeContent(channel: channel, method: method, properties: properties, body: body, frameMax: self.tuning.frameMax)
        } catch {
            self.logger.error("cannot encode \(method.name): \(error)")
        }
        self.markDirty()
    }

    private func markDirty() {
        guard !self.isDirty else { return }
        self.isDirty = true
        if !self.isReading { self.core.markDirty(self) }
    }

    func confirmsPending(on channel: ServerChannel) {
        if !self.confirmBatchStarts.contains(where: { $0.channel == channel.id }) {
            self.confirmBatchStarts.append((channel.id, ContinuousClock.now))
        }
        self.channelsWithConfirms.append(channel)
    }

    func flush() {
        self.isDirty = false
        guard self.outbound.readableBytes > 0, let context = self.context else { return }
        let buffer = self.outbound
        let wasFull = buffer.readableBytes >= Self.outboundDeliveryLimit
        self.outbound = context.channel.allocator.buffer(capacity: Swift.min(Swift.max(16 * 1024, buffer.readableBytes), Self.outboundDeliveryLimit))
        self.lastWriteAt = .now()
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
        // Deliveries stopped at the buffer limit; if the socket took it all, go on (on
        // the next turn of the loop), else channelWritabilityChanged resumes them.
        if wasFull, context.channel.isWritable {
            context.eventLoop.assumeIsolated().execute { self.resumeDeliveries() }
        }
    }

    private func flushAndClose() {
        guard let context = self.context else { return }
        self.isDirty = false
        let buffer = self.outbound
        self.outbound = context.channel.allocator.buffer(capacity: 0)
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: promise)
        let channel = context.channel
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: - Heartbeats

    private func startHeartbeats(interval: UInt16) {
        guard interval > 0, let context = self.context else { return }
        let interval = TimeAmount.seconds(Int64(interval))
        self.scheduleHeartbeat(on: context.eventLoop, interval: interval)
    }

    private func scheduleHeartbeat(on eventLoop: any EventLoop, interval: TimeAmount) {
        guard !self.isTornDown else { return }
        let tick = Swift.max(TimeAmount.milliseconds(500), .nanoseconds(interval.nanoseconds / 2))
        self.heartbeatTask = eventLoop.assumeIsolated().scheduleTask(in: tick) {
            self.heartbeatTimerFired(interval: interval)
            self.scheduleHeartbeat(on: eventLoop, interval: interval)
        }
    }

    /// Sends a heartbeat when nothing else went out for half an interval, and drops a
    /// peer silent for two intervals (dead peer detection).
    private func heartbeatTimerFired(interval: TimeAmount) {
        let now = NIODeadline.now()
        if !self.flowBlockers.isEmpty {
            // We are not reading, so the peer's heartbeats cannot be seen.
            self.lastReadAt = now
        }
        if now - self.lastReadAt > interval * 2 {
            self.logger.info("closing connection: no heartbeat from peer for two intervals")
            self.context?.close(promise: nil)
            return
        }
        if now - self.lastWriteAt >= .nanoseconds(interval.nanoseconds / 2) {
            self.outbound.writeBytes([UInt8(FrameType.heartbeat.rawValue), 0, 0, 0, 0, 0, 0, UInt8(FrameConstants.end)])
            self.flush()
        }
    }

    // MARK: - Teardown

    private func closeAllChannels() {
        for channel in self.channels.values {
            channel.isClosing = true
            channel.tearDown()
        }
        self.channels.removeAll()
        self.channelsWithConfirms.removeAll()
    }

    func deleteQueue(_ queue: BrokerQueue) {
        for consumer in queue.removeAllConsumers() {
            consumer.channel.consumerCancelledByServer(consumer)
        }
        queue.vhost.deleteQueue(queue)
    }

    /// Server shutdown (or the user deleted): connection.close 320, then the socket closes.
    func shutdown(reason: String = "broker shutdown") {
        self.run(self.machine.shutdownRequested(reason: reason))
        self.flushAndClose()
    }

    private func tearDown() {
        guard !self.isTornDown else { return }
        self.isTornDown = true
        self.heartbeatTask?.cancel()
        self.heartbeatTask = nil
        self.closeAllChannels()
        for queue in self.exclusiveQueues where !queue.isDeleted {
            self.deleteQueue(queue)
        }
        self.exclusiveQueues.removeAll()
        self.core.connections[ObjectIdentifier(self)] = nil
    }
}

@available(*, unavailable)
extension BrokerConnection: Sendable {}
