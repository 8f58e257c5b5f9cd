import AMQPProtocol
import NIOCore
import NIOPosix

@testable import Broker

/// A tiny raw-frame AMQP client for end-to-end tests: it writes frames as given and
/// hands back every frame the broker sends, so tests can check exact replies and codes.
final class TestFrameClient {
    struct Closed: Error {}

    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let continuation: AsyncThrowingStream<Frame, any Error>.Continuation
        var buffer = ByteBuffer()
        let decoder = FrameDecoder(maximumFrameSize: 0)
        var sawHeader = false

        init(continuation: AsyncThrowingStream<Frame, any Error>.Continuation) {
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = self.unwrapInboundIn(data)
            self.buffer.writeBuffer(&incoming)
            do {
                while let frame = try self.decoder.decodeFrame(buffer: &self.buffer) {
                    self.continuation.yield(frame)
                }
            } catch {
                self.continuation.finish(throwing: error)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.continuation.finish(throwing: Closed())
        }
    }

    let channel: any Channel
    private var frames: AsyncThrowingStream<Frame, any Error>.AsyncIterator

    private init(channel: any Channel, frames: AsyncThrowingStream<Frame, any Error>) {
        self.channel = channel
        self.frames = frames.makeAsyncIterator()
    }

    /// `lifetime`: the socket is closed after it, so a stuck wait always ends.
    static func connect(port: Int, lifetime: TimeAmount = .seconds(10)) async throws -> TestFrameClient {
        let (stream, continuation) = AsyncThrowingStream<Frame, any Error>.makeStream()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        // Every test is bounded in time: a stuck wait ends when the socket does.
        channel.eventLoop.scheduleTask(in: lifetime) { channel.close(promise: nil) }
        return TestFrameClient(channel: channel, frames: stream)
    }

    func write(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func send(_ method: AMQP.Method, channel: UInt16 = 0) async throws {
        var buffer = ByteBuffer()
        try buffer.writeMethodFrame(channel: channel, method)
        try await self.channel.writeAndFlush(buffer)
    }

    func publish(channel: UInt16, exchange: String = "", routingKey: String, body: String,
                 properties: BasicProperties = BasicProperties(), mandatory: Bool = false) async throws {
        var buffer = ByteBuffer()
        try buffer.writeContent(
            channel: channel, method: .basicPublish(.init(exchange: exchange, routingKey: routingKey, mandatory: mandatory)),
            properties: properties, body: ByteBuffer(string: body), frameMax: 131_072
        )
        try await self.channel.writeAndFlush(buffer)
    }

    func nextFrame() async throws -> Frame {
        while true {
            guard let frame = try await self.frames.next() else { throw Closed() }
            if case .heartbeat = frame { continue }
            return frame
        }
    }

    func nextMethod() async throws -> AMQP.Method {
        guard case .method(_, let method) = try await self.nextFrame() else { throw Closed() }
        return method
    }

    /// A delivered/returned/got message: its method and body as text.
    func nextContent() async throws -> (AMQP.Method, String) {
        let method = try await self.nextMethod()
        guard case .header(_, let header) = try await self.nextFrame() else { throw Closed() }
        var body = ""
        while body.utf8.count < Int(header.bodySize) {
            guard case .body(_, let part) = try await self.nextFrame() else { throw Closed() }
            body += String(buffer: part)
        }
        return (method, body)
    }

    /// The reply code of the next connection.close or channel.close.
    func nextCloseCode() async throws -> UInt16? {
        switch try await self.nextMethod() {
        case .connectionClose(let close): return close.replyCode
        case .channelClose(let close): return close.replyCode
        default: return nil
        }
    }

    /// `cancelNotifications`: whether the client announces `consumer_cancel_notify`.
    func handshake(user: String = "guest", password: String = "guest", vhost: String = "/", cancelNotifications: Bool = true) async throws {
        try await self.write(AMQP.protocolHeader)
        guard case .connectionStart = try await self.nextMethod() else { throw Closed() }
        let capabilities: FieldTable = cancelNotifications ? ["consumer_cancel_notify": .bool(true)] : [:]
        try await self.send(.connectionStartOk(.init(
            clientProperties: ["capabilities": .table(capabilities)], mechanism: "PLAIN",
            response: [0] + Array(user.utf8) + [0] + Array(password.utf8), locale: "en_US"
        )))
        guard case .connectionTune(let tune) = try await self.nextMethod() else { throw Closed() }
        try await self.send(.connectionTuneOk(.init(channelMax: tune.channelMax, frameMax: tune.frameMax, heartbeat: 0)))
        try await self.send(.connectionOpen(.init(virtualHost: vhost)))
        guard case .connectionOpenOk = try await self.nextMethod() else { throw Closed() }
    }

    func openChannel(_ id: UInt16 = 1) async throws {
        try await self.send(.channelOpen(.init()), channel: id)
        guard case .channelOpenOk = try await self.nextMethod() else { throw Closed() }
    }

    func close() async {
        try? await self.channel.close()
    }
}
