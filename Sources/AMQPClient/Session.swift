import AMQPProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOPosix

/// Someone waiting for publisher confirms.
enum ConfirmWaiter: Sendable {
    case message(CheckedContinuation<Void, any Error>)
    case batch(CheckedContinuation<[UInt64], any Error>)
}

/// What publishers share with the event loop, under one lock: encoded frames waiting
/// for the next flush and the confirm trackers (a sequence number is handed out in the
/// same critical section that queues the frames, so numbers match wire order).
struct Outbox: Sendable {
    var buffer: ByteBuffer = ByteBuffer()
    var flushScheduled = false
    var frameMax: UInt32 = 131_072
    var closed: AMQPError? = nil
    var isWritable = true
    var confirms: [UInt16: ConfirmTracker<ConfirmWaiter>] = [:]
}

/// Callbacks from a session to the connection that owns it.
struct SessionEvents: Sendable {
    var closed: @Sendable (_ sessionID: UInt64, AMQPError?) -> Void
    var blocked: @Sendable (String?) -> Void
}

/// One TCP connection to the broker, after the handshake. `AMQPConnection` replaces it
/// with a new one when it recovers; the handles users hold stay the same.
final class Session: Sendable {
    let id: UInt64
    let nioChannel: any Channel
    let negotiated: NegotiatedParameters
    let serverProperties: FieldTable
    let outbox: NIOLockedValueBox<Outbox>
    let handler: NIOLoopBound<AMQPConnectionHandler>

    var eventLoop: any EventLoop { self.nioChannel.eventLoop }

    private init(id: UInt64, nioChannel: any Channel, negotiated: NegotiatedParameters, serverProperties: FieldTable, outbox: NIOLockedValueBox<Outbox>, handler: NIOLoopBound<AMQPConnectionHandler>) {
        self.id = id
        self.nioChannel = nioChannel
        self.negotiated = negotiated
        self.serverProperties = serverProperties
        self.outbox = outbox
        self.handler = handler
    }

    static func connect(
        id: UInt64,
        configuration: AMQPConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        events: SessionEvents
    ) async throws -> Session {
        let outbox = NIOLockedValueBox(Outbox())
        let settings = ClientConnectionStateMachine.Settings(
            username: configuration.username,
            password: configuration.password,
            mechanism: configuration.authenticationMechanism,
            virtualHost: configuration.virtualHost,
            heartbeat: configuration.heartbeat,
            frameMax: configuration.frameMax,
            channelMax: configuration.channelMax,
            clientProperties: Self.clientProperties(configuration)
        )
        typealias Started = (NIOLoopBound<AMQPConnectionHandler>, EventLoopFuture<(NegotiatedParameters, FieldTable)>)
        let started = NIOLockedValueBox<Started?>(nil)
        let tls = try configuration.tls.map { options throws(AMQPError) in try Self.makeTLSContext(options) }
        let serverName = Self.serverName(configuration)
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    let handler = AMQPConnectionHandler(
                        sessionID: id, settings: settings, outbox: outbox, events: events,
                        handshakeTimeout: configuration.connectTimeout, logger: logger
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                    let loopBound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
                    if let handshake = handler.handshakeFuture {
                        started.withLockedValue { $0 = (loopBound, handshake) }
                    }
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            throw AMQPError(.connectionRefused, "cannot connect to \(configuration.redactedURL): \(error)")
        }
        guard let (handler, handshake) = started.withLockedValue({ $0 }) else {
            throw AMQPError(.connectionClosed, "the connection closed during setup")
        }
        let (negotiated, properties) = try await handshake.get()
        return Session(id: id, nioChannel: channel, negotiated: negotiated, serverProperties: properties, outbox: outbox, handler: handler)
    }

    /// The TLS context of `options`: verifies chain and name by default.
    static func makeTLSContext(_ options: AMQPConnectionConfiguration.TLSOptions) throws(AMQPError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = !options.verifyPeer ? .none : options.verifyHostname ? .fullVerification : .noHostnameVerification
        do {
            if let caFile = options.caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let certificateFile = options.certificateFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                // The key may be in the certificate's file.
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: options.keyFile ?? certificateFile, format: .pem))
            }
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw AMQPError(.tlsFailed, "cannot set up TLS (CA \(options.caFile ?? "system"), certificate \(options.certificateFile ?? "none")): \(error)")
        }
    }

    /// SNI and the name checked: the configured one, else the host unless it is an IP
    /// address (then the certificate must name the address; SNI carries no addresses).
    static func serverName(_ configuration: AMQPConnectionConfiguration) -> String? {
        if let name = configuration.tls?.serverName { return name }
        let host = configuration.host
        if (try? SocketAddress(ipAddress: host, port: 0)) != nil { return nil }
        return host
    }

    static func clientProperties(_ configuration: AMQPConnectionConfiguration) -> FieldTable {
        var properties: FieldTable = [
            "product": .string("Conductor AMQPClient"),
            "platform": .string("Swift"),
            "version": .string("0.1"),
            "capabilities": .table(AMQP.capabilities),
        ]
        if let name = configuration.connectionName {
            properties.storage["connection_name"] = .string(name)
        }
        return properties
    }

    // MARK: calls

    /// Sends a synchronous method on a channel and waits for its reply.
    func call(_ channelID: UInt16, _ method: AMQP.Method, consumer: ConsumerSink? = nil) async throws -> CallResult {
        let promise = self.eventLoop.makePromise(of: CallResult.self)
        let handler = self.handler
        self.eventLoop.execute {
            handler.value.call(channelID, method, PendingCall(promise: promise, consumer: consumer))
        }
        return try await promise.futureResult.get()
    }

    func openChannel(_ channelID: UInt16, handle: AMQPChannel) async throws {
        let promise = self.eventLoop.makePromise(of: CallResult.self)
        let handler = self.handler
        self.eventLoop.execute {
            handler.value.openChannel(channelID, handle: handle, PendingCall(promise: promise, consumer: nil))
        }
        _ = try await promise.futureResult.get()
    }

    func closeChannel(_ channelID: UInt16) async throws {
        let promise = self.eventLoop.makePromise(of: CallResult.self)
        let handler = self.handler
        self.eventLoop.execute {
            handler.value.closeChannel(channelID, PendingCall(promise: promise, consumer: nil))
        }
        _ = try await promise.futureResult.get()
    }

    func close() async throws {
        let promise = self.eventLoop.makePromise(of: Void.self)
        let handler = self.handler
        self.eventLoop.execute {
            handler.value.closeConnection(promise)
        }
        try await promise.futureResult.get()
    }

    // MARK: the publish path

    /// Queues frames for the wire without waiting: encoded under the outbox lock; the
    /// first writer after a flush schedules the next one, so a burst of publishes from
    /// another thread turns into a few large writes.
    func enqueue(
        channelID: UInt16,
        publish: Bool,
        waiter: ConfirmWaiter? = nil,
        _ encode: (inout ByteBuffer, UInt32) throws(ProtocolError) -> Void
    ) throws(AMQPError) -> UInt64? {
        let result: Result<(UInt64?, Bool), AMQPError> = self.outbox.withLockedValue { outbox in
            if let closed = outbox.closed { return .failure(closed) }
            if waiter != nil, outbox.confirms[channelID] == nil {
                return .failure(AMQPError(.invalidArgument, "publishConfirmed needs confirm mode: call confirmSelect() first"))
            }
            let mark = outbox.buffer.writerIndex
            do throws(ProtocolError) {
                try encode(&outbox.buffer, outbox.frameMax)
            } catch {
                outbox.buffer.moveWriterIndex(to: mark)
                return .failure(AMQPError(.invalidArgument, error.message))
            }
            // Only a publish takes a confirm sequence number: the broker counts publishes,
            // and an ack of ours on the same channel must not shift the numbering.
            let sequence = publish ? outbox.confirms[channelID]?.published(waiter: waiter) : nil
            let schedule = !outbox.flushScheduled
            outbox.flushScheduled = true
            return .success((sequence, schedule))
        }
        switch result {
        case .failure(let error):
            throw error
        case .success(let (sequence, schedule)):
            if schedule {
                let handler = self.handler
                self.eventLoop.execute { handler.value.flushOutbox() }
            }
            return sequence
        }
    }

    var isWritable: Bool { self.outbox.withLockedValue { $0.isWritable && $0.buffer.readableBytes < 4 * 1024 * 1024 } }

    func waitUntilWritable() async throws {
        let promise = self.eventLoop.makePromise(of: Void.self)
        let handler = self.handler
        self.eventLoop.execute { handler.value.waitUntilWritable(promise) }
        try await promise.futureResult.get()
    }
}
