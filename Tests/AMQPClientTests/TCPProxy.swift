import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A loopback TCP proxy the tests can cut: every connection through it is closed by
/// `severAll()`, which looks to the client like a broker dropping the connection.
final class TCPProxy: Sendable {
    private let server: any Channel
    private let connections: NIOLockedValueBox<[any Channel]>
    var port: Int { self.server.localAddress!.port! }

    /// Forwards bytes to the peer channel.
    private final class Glue: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        /// The other side, and bytes that arrived before it was connected.
        let peer: NIOLockedValueBox<(channel: (any Channel)?, early: [ByteBuffer])> = NIOLockedValueBox((nil, []))
        func connect(to channel: any Channel) {
            let early = self.peer.withLockedValue { peer in
                peer.channel = channel
                defer { peer.early = [] }
                return peer.early
            }
            early.forEach { channel.write($0, promise: nil) }
            channel.flush()
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = self.unwrapInboundIn(data)
            let target: (any Channel)? = self.peer.withLockedValue { peer in
                if peer.channel == nil { peer.early.append(bytes) }
                return peer.channel
            }
            target?.writeAndFlush(bytes, promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            self.peer.withLockedValue { $0.channel }?.close(promise: nil)
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    init(targetPort: Int) async throws {
        let connections = NIOLockedValueBox<[any Channel]>([])
        self.connections = connections
        let group = MultiThreadedEventLoopGroup.singleton
        self.server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let inboundGlue = Glue()
                let outboundGlue = Glue()
                return inbound.pipeline.addHandler(inboundGlue).flatMap {
                    ClientBootstrap(group: inbound.eventLoop)
                        .channelInitializer { $0.pipeline.addHandler(outboundGlue) }
                        .connect(host: "127.0.0.1", port: targetPort)
                }.map { outbound in
                    inboundGlue.connect(to: outbound)
                    outboundGlue.connect(to: inbound)
                    connections.withLockedValue { $0 += [inbound, outbound] }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func severAll() {
        let all = self.connections.withLockedValue { list in
            defer { list.removeAll() }
            return list
        }
        all.forEach { $0.close(promise: nil) }
    }

    func stop() async throws {
        self.severAll()
        try await self.server.close()
    }
}
