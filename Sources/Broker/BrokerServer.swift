import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The embedded AMQP 0-9-1 broker as a `Service`. Accepting and every connection run on
/// one dedicated event loop that also owns all broker state (see docs/broker.md).
public final class BrokerServer: Service, Sendable {
    private struct State {
        var serverChannel: (any Channel)?
        var started = false
        var shutDown = false
    }

    public let configuration: BrokerConfiguration
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let core: NIOLoopBoundBox<BrokerCore>
    private let state = NIOLockedValueBox(State())

    public init(configuration: BrokerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let eventLoop = self.group.next()
        // The loop is not running our code yet, so building the core here is safe.
        self.core = NIOLoopBoundBox.makeBoxSendingValue(
            BrokerCore(configuration: configuration, eventLoop: eventLoop, logger: logger),
            eventLoop: eventLoop
        )
    }

    /// Binds the listener and returns the port it got (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let core = self.core
        let logger = self.logger
        let eventLoop = core.eventLoop
        let bootstrap = ServerBootstrap(group: self.group, childGroup: self.group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Few reads per turn of the loop: a flooding publisher cannot hold the loop
            // for long before consumers' acks are read (flow control does the rest).
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                eventLoop.makeCompletedFuture {
                    let peerIsLoopback = Self.isLoopback(channel.remoteAddress)
                    var connectionLogger = logger
                    connectionLogger[metadataKey: "amqp_peer"] = "\(channel.remoteAddress?.description ?? "?")"
                    let handler = BrokerConnection(core: core.value, peerIsLoopback: peerIsLoopback, logger: connectionLogger)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: self.configuration.host, port: self.configuration.port).get()
        } catch {
            throw BrokerServerError(
                "cannot listen on \(self.configuration.host):\(self.configuration.port): \(error)"
            )
        }
        self.state.withLockedValue {
            $0.serverChannel = channel
            $0.started = true
        }
        let port = channel.localAddress?.port ?? self.configuration.port
        self.logger.info("broker listening", metadata: ["host": "\(self.configuration.host)", "port": "\(port)"])
        return port
    }

    /// Serves until graceful shutdown (SIGTERM in a `ServiceGroup`) or cancellation.
    public func run() async throws {
        if !self.state.withLockedValue({ $0.started }) {
            try await self.start()
        }
        let channel = self.state.withLockedValue { $0.serverChannel }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await channel?.closeFuture.get()
            } onCancel: {
                channel?.close(promise: nil)
            }
        } onGracefulShutdown: {
            channel?.close(promise: nil)
        }
        try await self.shutdown()
    }

    /// Closes the listener and every connection (connection.close 320 CONNECTION_FORCED),
    /// then stops the broker's event loop. The server cannot be started again.
    public func shutdown() async throws {
        let channel = self.state.withLockedValue { state -> (any Channel)?? in
            guard !state.shutDown else { return nil }
            state.shutDown = true
            let channel = state.serverChannel
            state.serverChannel = nil
            return .some(channel)
        }
        guard let channel else { return }
        try? await channel?.close()
        let core = self.core
        let closing = try await core.eventLoop.submit { () -> [EventLoopFuture<Void>] in
            core.value.connections.values.compactMap { connection in
                connection.shutdown()
                return connection.closeFuture
            }
        }.get()
        // Peers get a moment to read the close; then the loop goes regardless.
        let settled = core.eventLoop.makePromise(of: Void.self)
        EventLoopFuture.andAllComplete(closing, on: core.eventLoop).cascade(to: settled)
        core.eventLoop.scheduleTask(in: .seconds(2)) { settled.succeed() }
        try? await settled.futureResult.get()
        try await self.group.shutdownGracefully()
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let ip = address?.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}

public struct BrokerServerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
