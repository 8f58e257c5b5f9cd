import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The embedded AMQP 0-9-1 broker as a `Service`. Accepting and every connection run on
/// one dedicated event loop that also owns all broker state (see docs/broker.md).
public final class BrokerServer: Service, Sendable {
    private struct State {
        var serverChannel: (any Channel)?
        /// The amqps listener and the admin/metrics HTTP listener, when configured.
        var tlsChannel: (any Channel)?
        var adminChannel: (any Channel)?
        /// The data directory's writer, closed last on shutdown.
        var messageLog: MessageLog?
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

    /// Binds the listener and returns the port it got (useful with port 0). Also binds
    /// the amqps and admin listeners when configured (see `tlsPort`, `adminPort`).
    @discardableResult
    public func start() async throws -> Int {
        let configuration = self.configuration
        // Bad certificate files fail here, before anything listens.
        let tlsContext = try configuration.tls?.makeContext()
        let core = self.core
        // The data directory's users.json (written atomically, so readable before the lock).
        try await core.eventLoop.submit { try core.value.loadStoredUsers() }.get()
        try await self.openStore()
        let channel = try await self.bind(host: configuration.host, port: configuration.port, tls: nil)
        var extra: [any Channel] = []
        do {
            if let tls = configuration.tls, let tlsContext {
                let tlsChannel = try await self.bind(host: tls.host ?? configuration.host, port: tls.port, tls: tlsContext)
                extra.append(tlsChannel)
                self.state.withLockedValue { $0.tlsChannel = tlsChannel }
            }
            if let admin = configuration.admin {
                let adminChannel = try await AdminServer.bind(admin, core: self.core, logger: self.logger)
                extra.append(adminChannel)
                self.state.withLockedValue { $0.adminChannel = adminChannel }
            }
        } catch {
            for listener in extra { try? await listener.close() }
            try? await channel.close()
            throw error
        }
        self.state.withLockedValue {
            $0.serverChannel = channel
            $0.started = true
        }
        let logger = self.logger
        try await core.eventLoop.submit {
            core.value.flow.startMonitoring(configuration.watermarks, dataDirectory: configuration.dataDirectory, on: core.eventLoop, logger: logger)
        }.get()
        let port = channel.localAddress?.port ?? configuration.port
        self.logger.info("broker listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
        return port
    }

    /// Reads the data directory (if configured) before anything listens.
    private func openStore() async throws {
        guard let directory = self.configuration.dataDirectory else { return }
        let core = self.core
        let log = try await core.eventLoop.submit {
            try core.value.openStore(
                directory: directory,
                onDurable: { ticket in core.eventLoop.execute { core.value.storeDurable(upTo: ticket) } },
                onFailure: { reason in core.eventLoop.execute { core.value.storeFailed(reason) } }
            )
        }.get()
        self.state.withLockedValue { $0.messageLog = log }
    }

    /// The port of the amqps listener, once started with `configuration.tls`.
    public var tlsPort: Int? { self.state.withLockedValue { $0.tlsChannel?.localAddress?.port } }

    /// The port of the admin/metrics HTTP listener, once started with `configuration.admin`.
    public var adminPort: Int? { self.state.withLockedValue { $0.adminChannel?.localAddress?.port } }

    private func bind(host: String, port: Int, tls: NIOSSLContext?) async throws -> any Channel {
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
            // Deliveries to a connection pause while this much waits unsent (a consumer
            // that does not read), see BrokerConnection.canDeliver.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                eventLoop.makeCompletedFuture {
                    let peerIsLoopback = Self.isLoopback(channel.remoteAddress)
                    let peer = channel.remoteAddress?.description ?? "?"
                    var connectionLogger = logger
                    connectionLogger[metadataKey: "amqp_peer"] = "\(peer)"
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    let handler = BrokerConnection(core: core.value, peerIsLoopback: peerIsLoopback, logger: connectionLogger, peer: peer, isTLS: tls != nil)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            return try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw BrokerServerError("cannot listen on \(host):\(port)\(tls == nil ? "" : " (amqps)"): \(error)")
        }
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
        let listeners = self.state.withLockedValue { state -> [(any Channel)?]? in
            guard !state.shutDown else { return nil }
            state.shutDown = true
            defer { (state.serverChannel, state.tlsChannel, state.adminChannel) = (nil, nil, nil) }
            return [state.serverChannel, state.tlsChannel, state.adminChannel]
        }
        guard let listeners else { return }
        for listener in listeners { try? await listener?.close() }
        let core = self.core
        try? await core.eventLoop.submit { core.value.flow.stopMonitoring() }.get()
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
        // What the last connections did (acks) reaches the disk before the loop stops.
        try? await core.eventLoop.submit { core.value.store?.shutdown() }.get()
        if let log = self.state.withLockedValue({ $0.messageLog }) { await log.close() }
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

extension BrokerServer {
    /// Runs the started broker as this process's main service until SIGTERM or SIGINT,
    /// then shuts it down gracefully (`conductor broker`).
    public func runUntilTerminated(logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: [.init(service: self)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
