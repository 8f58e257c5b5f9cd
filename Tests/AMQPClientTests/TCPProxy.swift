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
        let peer: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = self.unwrapInboundIn(data)
            self.peer.withLockedValue { $0 }?.writeAndFlush(bytes, promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            self.peer.withLockedValue { $0 }?.close(promise: nil)
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
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                let inboundGlue = Glue()
                let outboundGlue = Glue()
                inboundGlue.peer.withLockedValue { _ in }
                return inbound.pipeline.addHandler(inboundGlue).flatMap {
                    ClientBootstrap(group: inbound.eventLoop)
                        .channelInitializer { $0.pipeline.addHandler(outboundGlue) }
                        .connect(host: "127.0.0.1", port: targetPort)
                }.map { outbound in
                    inboundGlue.peer.withLockedValue { $0 = outbound }
                    outboundGlue.peer.withLockedValue { $0 = inbound }
                    connections.withLockedValue { $0 += [inbound, outbound] }
                    inbound.read()
                    _ = inbound.setOption(.autoRead, value: true)
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
