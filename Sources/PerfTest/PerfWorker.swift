import AMQPClient
import AMQPProtocol
import NIOCore

/// What one load-generating connection does once it is open.
enum PerfRole: Sendable {
    /// Publishes `size`-byte messages to the default exchange with routing key `queue`.
    /// `confirmWindow` > 0 puts the channel in confirm mode and keeps at most that many
    /// publishes unconfirmed; `rate` > 0 limits messages per second.
    case producer(queue: String, size: Int, confirmWindow: Int, rate: Int)
    /// Consumes from `queue` with `prefetch` unacknowledged messages at most, acknowledging
    /// once per read burst with `multiple`, unless `autoAck`.
    case consumer(queue: String, prefetch: UInt16, autoAck: Bool)
}

/// Counters of one worker, read by the reporter on the worker's event loop.
struct PerfCounters: Sendable {
    var published = 0
    var confirmed = 0
    var nacked = 0
    var received = 0
    var returned = 0
    /// Publish-to-delivery latencies in nanoseconds since the last `drain`.
    var latencies: [UInt64] = []
}

/// A load generator speaking AMQP 0-9-1 directly on one NIO channel: it writes
/// pre-encoded publish frames in batches while the socket is writable and parses only what
/// it needs. It sits on the wire layer rather than the async client so that the tool is
/// never the bottleneck of the broker it measures.
final class PerfWorker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking(HandshakeStep)
        case setup(remaining: [AMQP.Method])
        case running
        case stopping
        case closed
    }

    private enum HandshakeStep { case start, tune, openOk, channelOpenOk }

    private let role: PerfRole
    private let connection: AMQPConnectionConfiguration
    private let clock: @Sendable () -> UInt64
    private let ready: EventLoopPromise<Void>
    private var readyPending = true
    private var state: State = .handshaking(.start)
    private var decoder = FrameDecoder(maximumFrameSize: AMQP.frameMinSize)
    private var inbound: ByteBuffer?
    private var assembler = ContentAssembler<AMQP.Method>(maximumBodySize: .max)
    private var frameMax: UInt32 = AMQP.frameMinSize
    private(set) var counters = PerfCounters()
    private(set) var failure: String?

    // Producer state.
    private var template = ByteBuffer()
    private var timestampOffset: Int?
    private var started: UInt64 = 0
    private var pumpScheduled = false

    // Consumer state.
    private var lastDeliveryTag: UInt64 = 0
    private var ackedDeliveryTag: UInt64 = 0

    private static let channelID: UInt16 = 1
    private static let batch = 256

    /// Durable queue, persistent (delivery mode 2) messages.
    private let persistent: Bool

    init(role: PerfRole, connection: AMQPConnectionConfiguration, ready: EventLoopPromise<Void>, clock: @escaping @Sendable () -> UInt64, persistent: Bool = false) {
        self.role = role
        self.persistent = persistent
        self.connection = connection
        self.ready = ready
        self.clock = clock
    }

    /// Hands out the counters gathered so far and starts a new latency interval.
    func drain() -> PerfCounters {
        let snapshot = self.counters
        self.counters.latencies.removeAll(keepingCapacity: true)
        return snapshot
    }

    /// Stops publishing (producers) and closes the connection politely.
    func stop(context: ChannelHandlerContext) {
        switch self.state {
        case .running, .setup, .handshaking:
            self.state = .stopping
            var buffer = context.channel.allocator.buffer(capacity: 64)
            try? buffer.writeMethodFrame(channel: 0, AMQP.Connection.Close(replyCode: ReplyCode.replySuccess, replyText: "perf-test done").asMethod)
            context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
        case .stopping, .closed:
            break
        }
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 8)
        buffer.writeBytes(AMQP.protocolHeader)
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .stopping = self.state {} else if self.failure == nil {
            self.failure = "the broker closed the connection"
        }
        self.state = .closed
        self.failReady(self.failure ?? "connection closed")
    }

    private func failReady(_ message: String) {
        guard self.readyPending else { return }
        self.readyPending = false
        self.ready.fail(PerfTestError(message))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(context: context, "\(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = bytes
        } else {
            self.inbound!.writeBuffer(&bytes)
        }
        do {
            while let frame = try self.decoder.decodeFrame(buffer: &self.inbound!) {
                try self.frameReceived(frame, context: context)
            }
        } catch {
            self.fail(context: context, "\(error)")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One cumulative ack per read burst keeps acks cheap for broker and tool alike.
        if case .running = self.state, case .consumer(_, _, false) = self.role, self.lastDeliveryTag > self.ackedDeliveryTag {
            self.ackedDeliveryTag = self.lastDeliveryTag
            self.send(AMQP.Basic.Ack(deliveryTag: self.lastDeliveryTag, multiple: true).asMethod, channel: Self.channelID, context: context)
        }
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.pump(context: context) }
    }

    // MARK: Protocol

    private func frameReceived(_ frame: Frame, context: ChannelHandlerContext) throws {
        switch frame {
        case .heartbeat:
            return
        case .header(_, let header):
            if let content = try self.assembler.headerReceived(header) { self.contentReceived(content) }
        case .body(_, let body):
            if let content = try self.assembler.bodyReceived(body) { self.contentReceived(content) }
        case .method(_, let method):
            try self.methodReceived(method, context: context)
        }
    }

    private func methodReceived(_ method: AMQP.Method, context: ChannelHandlerContext) throws {
        switch method {
        case .connectionClose(let close):
            self.send(AMQP.Connection.CloseOk().asMethod, context: context)
            if close.replyCode != ReplyCode.replySuccess {
                self.failure = "broker closed the connection: \(close.replyCode) \(close.replyText)"
            }
            self.state = .stopping
            context.flush()
            context.close(promise: nil)
            return
        case .connectionCloseOk:
            self.state = .closed
            context.close(promise: nil)
            return
        case .channelClose(let close):
            self.fail(context: context, "broker closed the channel: \(close.replyCode) \(close.replyText)")
            return
        case .basicDeliver(let deliver):
            self.lastDeliveryTag = deliver.deliveryTag
            try self.assembler.methodReceived(method)
            return
        case .basicReturn:
            self.counters.returned += 1
            try self.assembler.methodReceived(method)
            return
        case .basicAck(let ack):
            self.confirm(upTo: ack.deliveryTag, multiple: ack.multiple, nacked: false, context: context)
            return
        case .basicNack(let nack):
            self.confirm(upTo: nack.deliveryTag, multiple: nack.multiple, nacked: true, context: context)
            return
        default:
            break
        }

        switch self.state {
        case .handshaking(.start):
            guard case .connectionStart(let start) = method else { throw PerfTestError("expected connection.start, got \(method.name)") }
            let mechanisms = String(decoding: start.mechanisms, as: UTF8.self).split(separator: " ")
            guard mechanisms.contains("PLAIN") else { throw PerfTestError("broker offers no PLAIN authentication") }
            let response = Array("\0\(self.connection.username)\0\(self.connection.password)".utf8)
            let properties: FieldTable = [
                "product": .string("conductor perf-test"),
                "capabilities": .table(AMQP.capabilities),
            ]
            self.send(AMQP.Connection.StartOk(clientProperties: properties, mechanism: "PLAIN", response: response, locale: "en_US").asMethod, context: context)
            self.state = .handshaking(.tune)
        case .handshaking(.tune):
            guard case .connectionTune(let tune) = method else { throw PerfTestError("expected connection.tune, got \(method.name)") }
            let wanted: UInt32 = 131_072
            self.frameMax = tune.frameMax == 0 ? wanted : min(tune.frameMax, wanted)
            self.decoder.maximumFrameSize = self.frameMax
            let channelMax = tune.channelMax == 0 ? 2047 : tune.channelMax
            self.send(AMQP.Connection.TuneOk(channelMax: channelMax, frameMax: self.frameMax, heartbeat: 0).asMethod, context: context)
            self.send(AMQP.Connection.Open(virtualHost: self.connection.virtualHost).asMethod, context: context)
            self.state = .handshaking(.openOk)
        case .handshaking(.openOk):
            guard case .connectionOpenOk = method else { throw PerfTestError("expected connection.open-ok, got \(method.name)") }
            self.send(AMQP.Channel.Open().asMethod, channel: Self.channelID, context: context)
            self.state = .handshaking(.channelOpenOk)
        case .handshaking(.channelOpenOk):
            guard case .channelOpenOk = method else { throw PerfTestError("expected channel.open-ok, got \(method.name)") }
            self.state = .setup(remaining: self.setupMethods())
            self.nextSetupStep(context: context)
        case .setup:
            // Each setup method is synchronous; its reply moves us to the next one.
            self.nextSetupStep(context: context)
        case .running, .stopping, .closed:
            break
        }
    }

    private func setupMethods() -> [AMQP.Method] {
        switch self.role {
        case .producer(let queue, _, let window, _):
            var methods = [Self.declare(queue, durable: self.persistent)]
            if window > 0 { methods.append(AMQP.Confirm.Select().asMethod) }
            return methods
        case .consumer(let queue, let prefetch, let autoAck):
            return [
                Self.declare(queue, durable: self.persistent),
                AMQP.Basic.Qos(prefetchCount: autoAck ? 0 : prefetch).asMethod,
                AMQP.Basic.Consume(queue: queue, noAck: autoAck).asMethod,
            ]
        }
    }

    /// Producers and consumers declare the same queue, so whichever comes first creates it;
    /// it goes away when the last consumer does, as PerfTest's queues do.
    private static func declare(_ queue: String, durable: Bool) -> AMQP.Method {
        AMQP.Queue.Declare(queue: queue, durable: durable, autoDelete: true).asMethod
    }

    private func nextSetupStep(context: ChannelHandlerContext) {
        guard case .setup(var remaining) = self.state else { return }
        if remaining.isEmpty {
            self.state = .running
            if case .producer(let queue, let size, _, _) = self.role { self.prepareTemplate(queue: queue, size: size, context: context) }
            self.started = self.clock()
            self.readyPending = false
            self.ready.succeed(())
            self.pump(context: context)
            return
        }
        let method = remaining.removeFirst()
        self.state = .setup(remaining: remaining)
        self.send(method, channel: Self.channelID, context: context)
        context.flush()
    }

    private func contentReceived(_ content: Content<AMQP.Method>) {
        guard case .basicDeliver = content.method else { return }
        self.counters.received += 1
        if content.body.readableBytes >= 8, let stamp = content.body.getInteger(at: content.body.readerIndex, as: UInt64.self), stamp != 0 {
            let now = self.clock()
            if now >= stamp, self.counters.latencies.count < 50_000_000 {
                self.counters.latencies.append(now - stamp)
            }
        }
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool, context: ChannelHandlerContext) {
        let settled = self.counters.confirmed + self.counters.nacked
        let count = multiple ? max(0, Int(tag) - settled) : 1
        if nacked { self.counters.nacked += count } else { self.counters.confirmed += count }
        self.pump(context: context)
    }

    // MARK: Publishing

    /// Encodes one publish (method, header and body frames) once; each message is a copy
    /// of it with the send time patched into the first eight body bytes.
    private func prepareTemplate(queue: String, size: Int, context: ChannelHandlerContext) {
        var body = context.channel.allocator.buffer(capacity: size)
        body.writeRepeatingByte(0, count: size)
        var template = context.channel.allocator.buffer(capacity: size + 256)
        do {
            try template.writeMethodFrame(channel: Self.channelID, AMQP.Basic.Publish(routingKey: queue).asMethod)
            let header = ContentHeader(bodySize: UInt64(size), properties: BasicProperties(deliveryMode: self.persistent ? 2 : nil))
            try template.writeFrame(type: .header, channel: Self.channelID) { (payload: inout ByteBuffer) throws(ProtocolError) in
                try header.encode(into: &payload)
            }
        } catch {
            self.fail(context: context, "cannot encode the message: \(error)")
            return
        }
        // The first body byte follows the 7-byte header of the first body frame.
        self.timestampOffset = size >= 8 ? template.readableBytes + 7 : nil
        template.writeBodyFrames(channel: Self.channelID, body: body, frameMax: self.frameMax)
        self.template = template
    }

    private func pump(context: ChannelHandlerContext) {
        guard case .running = self.state, case .producer(_, _, let window, let rate) = self.role else { return }
        var allowed = Self.batch
        if window > 0 {
            allowed = min(allowed, window - (self.counters.published - self.counters.confirmed - self.counters.nacked))
        }
        if rate > 0 {
            let elapsed = Double(self.clock() - self.started) / 1e9
            allowed = min(allowed, Int(elapsed * Double(rate)) + 1 - self.counters.published)
            if allowed <= 0 {
                self.schedulePump(context: context, after: .microseconds(Int64(1_000_000 / rate)))
                return
            }
        }
        guard allowed > 0, context.channel.isWritable else { return }
        var buffer = context.channel.allocator.buffer(capacity: allowed * self.template.readableBytes)
        for _ in 0..<allowed {
            let start = buffer.writerIndex
            buffer.writeImmutableBuffer(self.template)
            if let offset = self.timestampOffset {
                buffer.setInteger(self.clock(), at: start + offset)
            }
        }
        self.counters.published += allowed
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
        self.schedulePump(context: context, after: nil)
    }

    private func schedulePump(context: ChannelHandlerContext, after delay: TimeAmount?) {
        guard !self.pumpScheduled else { return }
        self.pumpScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let task: @Sendable () -> Void = {
            let (worker, context) = loopBound.value
            worker.pumpScheduled = false
            worker.pump(context: context)
        }
        if let delay {
            context.eventLoop.scheduleTask(in: delay, task)
        } else {
            context.eventLoop.execute(task)
        }
    }

    // MARK: Helpers

    private func send(_ method: AMQP.Method, channel: UInt16 = 0, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do {
            try buffer.writeMethodFrame(channel: channel, method)
        } catch {
            self.fail(context: context, "cannot encode \(method.name): \(error)")
            return
        }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        if self.failure == nil { self.failure = message }
        self.failReady(message)
        self.state = .closed
        context.close(promise: nil)
    }
}

/// A failure of the load generator, with the message a user reads.
struct PerfTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
