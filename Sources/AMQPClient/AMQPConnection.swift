import AMQPProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A connection to an AMQP 0-9-1 broker. The object is a stable handle: when the TCP
/// connection is lost and recovery is enabled, it reconnects with exponential backoff,
/// re-declares the recorded topology, reopens its channels and resumes their consumers.
/// Calls made meanwhile wait for the recovery (up to `recoveryWaitTimeout`).
///
/// With several nodes (`AMQPConnectionConfiguration.alternateEndpoints`, a RabbitMQ
/// cluster), the first connect tries them in order and a recovery starts with the node
/// after the one that was lost, going round the list; the backoff grows once per round.
public final class AMQPConnection: Sendable {
    public let configuration: AMQPConnectionConfiguration
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger

    private enum Phase {
        case connected
        case recovering
        case closed(AMQPError?)
    }

    private struct State {
        var phase: Phase = .connected
        var session: Session? = nil
        /// Which of `configuration.endpoints` the session is connected to.
        var endpointIndex = 0
        var nextSessionID: UInt64 = 1
        /// Recoveries completed so far, and who wants to hear of the next ones.
        var recoveryCount = 0
        var recoveryListeners: [UInt64: AsyncStream<Int>.Continuation] = [:]
        var nextListenerID: UInt64 = 0
        var channels: [UInt16: AMQPChannel] = [:]
        var nextChannelID: UInt16 = 1
        var topology = TopologyRecord()
        var recoveryWaiters: [UInt64: CheckedContinuation<Session, any Error>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    /// `connection.blocked` (the reason) and `connection.unblocked` (nil) from the broker.
    public let blockedUpdates: AsyncStream<String?>
    private let blockedContinuation: AsyncStream<String?>.Continuation
    /// Reconnections that completed (each one yields the number of attempts it took).
    public let recoveries: AsyncStream<Int>
    private let recoveriesContinuation: AsyncStream<Int>.Continuation

    private init(configuration: AMQPConnectionConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        var logger = logger
        logger[metadataKey: "amqp_url"] = "\(configuration.redactedURL)"
        self.logger = logger
        (self.blockedUpdates, self.blockedContinuation) = AsyncStream.makeStream(of: String?.self, bufferingPolicy: .bufferingNewest(16))
        (self.recoveries, self.recoveriesContinuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(16))
    }

    /// Connects and completes the AMQP handshake. Throws `AMQPError` with
    /// `.connectionRefused`, `.authenticationFailed` (reply code 403 when the broker
    /// said so), `.timeout` or `.connectionClosed`. The first connect is not retried.
    public static func connect(
        _ configuration: AMQPConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "conductor.amqp-client", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> AMQPConnection {
        let connection = AMQPConnection(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        let endpoints = configuration.endpoints
        var session: Session?
        var failures: [String] = []
        for (index, endpoint) in endpoints.enumerated() {
            do {
                session = try await connection.makeSession(to: endpoint)
                connection.state.withLockedValue { $0.endpointIndex = index }
                if !failures.isEmpty {
                    connection.logger.notice("connected to another node", metadata: ["node": "\(endpoint)", "unreachable": "\(failures.joined(separator: "; "))"])
                }
                break
            } catch {
                let amqpError = error as? AMQPError
                guard endpoints.count > 1, amqpError.map(Self.anotherNodeMayAnswer) ?? true else { throw error }
                failures.append("\(endpoint): \(amqpError?.message ?? "\(error)")")
                if index == endpoints.count - 1 {
                    throw AMQPError(
                        amqpError?.code ?? .connectionRefused, "no node of \(configuration.redactedURL) answered: \(failures.joined(separator: "; "))",
                        replyCode: amqpError?.replyCode)
                }
            }
        }
        guard let session else { throw AMQPError(.connectionRefused, "no node to connect to in \(configuration.redactedURL)") }
        connection.state.withLockedValue { $0.session = session }
        if session.outbox.withLockedValue({ $0.closed != nil }) {
            connection.sessionClosed(session.id, AMQPError(.connectionClosed, "connection lost right after the handshake"))
        }
        return connection
    }

    /// Connects to `url` (`amqp://user:pass@host:port/vhost`).
    public static func connect(
        url: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "conductor.amqp-client", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> AMQPConnection {
        try await Self.connect(AMQPConnectionConfiguration(url: url), eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// Whether a failed connect to one node says nothing of the others: it could not be
    /// reached or closed on us. A refused login or a bad TLS setup is the same everywhere.
    static func anotherNodeMayAnswer(_ error: AMQPError) -> Bool {
        error.code != .authenticationFailed && error.code != .invalidURL
    }

    private func makeSession(to endpoint: AMQPConnectionConfiguration.Endpoint) async throws -> Session {
        let id = self.state.withLockedValue { state in
            defer { state.nextSessionID += 1 }
            return state.nextSessionID
        }
        let events = SessionEvents(
            closed: { [weak self] sessionID, error in self?.sessionClosed(sessionID, error) },
            blocked: { [weak self] reason in self?.blockedContinuation.yield(reason) }
        )
        var logger = self.logger
        if !self.configuration.alternateEndpoints.isEmpty { logger[metadataKey: "amqp_node"] = "\(endpoint)" }
        return try await Session.connect(
            id: id, configuration: self.configuration.pointed(at: endpoint), eventLoopGroup: self.eventLoopGroup, logger: logger, events: events)
    }

    /// The node the connection is on now (nil while it recovers or after it closed).
    public var connectedEndpoint: AMQPConnectionConfiguration.Endpoint? {
        self.state.withLockedValue { state in
            guard case .connected = state.phase else { return nil }
            let endpoints = self.configuration.endpoints
            return endpoints[state.endpointIndex % endpoints.count]
        }
    }

    /// How many times the connection has recovered so far.
    public var recoveryCount: Int { self.state.withLockedValue { $0.recoveryCount } }

    /// A stream of the recoveries completed from now on (each yields `recoveryCount`
    /// after it), for any number of listeners, unlike `recoveries`; it finishes when the
    /// connection closes for good. Callers that resend requests after a failover use it.
    public func recoveryEvents() -> AsyncStream<Int> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(16))
        let registered: Bool = self.state.withLockedValue { state in
            if case .closed = state.phase { return false }
            state.nextListenerID += 1
            let id = state.nextListenerID
            state.recoveryListeners[id] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLockedValue { $0.recoveryListeners.removeValue(forKey: id) }
            }
            return true
        }
        if !registered { continuation.finish() }
        return stream
    }

    /// What the broker announced in connection.start (product, version, capabilities).
    public var serverProperties: FieldTable {
        self.state.withLockedValue { $0.session?.serverProperties } ?? [:]
    }

    /// Whether the connection is up (not recovering, not closed).
    public var isConnected: Bool {
        self.state.withLockedValue { state in
            if case .connected = state.phase { return true }
            return false
        }
    }

    /// The values settled in tune/tune-ok of the current TCP connection.
    public var negotiatedFrameMax: UInt32 { self.state.withLockedValue { $0.session?.negotiated.frameMax } ?? 0 }
    public var negotiatedHeartbeat: UInt16 { self.state.withLockedValue { $0.session?.negotiated.heartbeat } ?? 0 }

    /// Opens a channel. The channel survives recoveries of the connection.
    public func openChannel() async throws -> AMQPChannel {
        let session = try await self.currentSession()
        let limit = session.negotiated.channelMax == 0 ? UInt16.max : session.negotiated.channelMax
        let channel: AMQPChannel = try self.state.withLockedValue { state throws(AMQPError) in
            var id = state.nextChannelID
            for _ in 0..<Int(limit) {
                if id == 0 || id > limit { id = 1 }
                if state.channels[id] == nil {
                    let channel = AMQPChannel(channelID: id, connection: self)
                    state.channels[id] = channel
                    state.nextChannelID = id &+ 1
                    return channel
                }
                id &+= 1
            }
            throw AMQPError(.channelLimitReached, "all \(limit) channels are in use")
        }
        do {
            try await session.openChannel(channel.channelID, handle: channel)
        } catch {
            self.channelReleased(channel.channelID)
            throw error
        }
        return channel
    }

    /// Closes the connection cleanly (queued publishes are written first) and stops recovery.
    public func close() async throws {
        let session: Session? = self.state.withLockedValue { state in
            if case .closed = state.phase { return nil }
            state.phase = .closed(nil)
            return state.session
        }
        self.failRecoveryWaiters(AMQPError(.connectionClosed, "the connection was closed by the application"))
        if let session {
            try await session.close()
        }
        self.finishEverything(nil)
    }

    // MARK: sessions and recovery

    /// The live session, waiting (bounded) while the connection recovers.
    func currentSession() async throws -> Session {
        enum Lookup { case ready(Session), failed(AMQPError), wait }
        let lookup: Lookup = self.state.withLockedValue { state in
            switch state.phase {
            case .connected: return state.session.map { .ready($0) } ?? .failed(AMQPError(.notConnected, "not connected"))
            case .closed(let error): return .failed(error ?? AMQPError(.connectionClosed, "the connection is closed"))
            case .recovering: return .wait
            }
        }
        switch lookup {
        case .ready(let session): return session
        case .failed(let error): throw error
        case .wait: break
        }
        let waiterID = self.state.withLockedValue { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = self.eventLoopGroup.any().scheduleTask(in: self.configuration.recoveryWaitTimeout) { [weak self] in
            let waiter = self?.state.withLockedValue { $0.recoveryWaiters.removeValue(forKey: waiterID) }
            waiter?.resume(throwing: AMQPError(.timeout, "the connection did not recover within \(self?.configuration.recoveryWaitTimeout.nanoseconds ?? 0 / 1_000_000) ms"))
        }
        defer { timeout.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<Session, AMQPError>? = self.state.withLockedValue { state in
                switch state.phase {
                case .connected:
                    if let session = state.session { return .success(session) }
                    return .failure(AMQPError(.notConnected, "not connected"))
                case .closed(let error):
                    return .failure(error ?? AMQPError(.connectionClosed, "the connection is closed"))
                case .recovering:
                    state.recoveryWaiters[waiterID] = continuation
                    return nil
                }
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }

    /// The live session without waiting (the publish path): throws while recovering.
    func sessionNow() throws(AMQPError) -> Session {
        let result: Result<Session, AMQPError> = self.state.withLockedValue { state in
            switch state.phase {
            case .connected:
                if let session = state.session { return .success(session) }
                return .failure(AMQPError(.notConnected, "not connected"))
            case .recovering:
                return .failure(AMQPError(.notConnected, "the connection is recovering; publish again once it is back (or use publishWhenConnected)"))
            case .closed(let error):
                return .failure(error ?? AMQPError(.connectionClosed, "the connection is closed"))
            }
        }
        return try result.get()
    }

    /// The id of the live session, for dropping acks of deliveries from an older one.
    var currentSessionID: UInt64? {
        self.state.withLockedValue { state in
            if case .connected = state.phase { return state.session?.id }
            return nil
        }
    }

    private func sessionClosed(_ sessionID: UInt64, _ error: AMQPError?) {
        enum Next { case nothing, recover, finish(AMQPError?) }
        let next: Next = self.state.withLockedValue { state in
            guard state.session?.id == sessionID, case .connected = state.phase else { return .nothing }
            if let error, self.configuration.recovery.enabled, error.code != .authenticationFailed {
                state.phase = .recovering
                return .recover
            }
            state.phase = .closed(error)
            return .finish(error)
        }
        switch next {
        case .nothing:
            break
        case .recover:
            self.logger.warning("connection lost, recovering", metadata: ["error": "\(error.map { "\($0)" } ?? "")"])
            // Recovery is driven by an event (the loss), never started from init.
            Task { await self.recover() }
        case .finish(let error):
            self.finishEverything(error)
        }
    }

    /// Reconnects, starting with the node after the one lost and going round the list;
    /// the backoff grows with each round (`RecoveryPolicy.backoff(attempt:)` of the round).
    private func recover() async {
        let endpoints = self.configuration.endpoints
        let lostIndex = self.state.withLockedValue { $0.endpointIndex }
        var attempt = 0
        while true {
            if case .closed = self.state.withLockedValue({ $0.phase }) { return }
            try? await Task.sleep(nanoseconds: UInt64(self.configuration.recovery.backoff(attempt: attempt / endpoints.count).nanoseconds))
            let index = endpoints.count == 1 ? 0 : (lostIndex + 1 + attempt) % endpoints.count
            attempt += 1
            do {
                let session = try await self.makeSession(to: endpoints[index])
                do {
                    try await self.restoreTopology(on: session)
                } catch {
                    // Not installed: nothing else would ever close it.
                    try? await session.close()
                    throw error
                }
                enum Installed { case done([CheckedContinuation<Session, any Error>], [AsyncStream<Int>.Continuation], Int), closedMeanwhile, lost }
                let installed: Installed = self.state.withLockedValue { state in
                    if case .closed = state.phase { return .closedMeanwhile }
                    if session.outbox.withLockedValue({ $0.closed != nil }) { return .lost }
                    state.session = session
                    state.endpointIndex = index
                    state.phase = .connected
                    state.recoveryCount += 1
                    let waiters = Array(state.recoveryWaiters.values)
                    state.recoveryWaiters.removeAll()
                    return .done(waiters, Array(state.recoveryListeners.values), state.recoveryCount)
                }
                switch installed {
                case .done(let waiters, let listeners, let count):
                    self.logger.info("connection recovered", metadata: ["attempts": "\(attempt)", "node": "\(endpoints[index])"])
                    waiters.forEach { $0.resume(returning: session) }
                    self.recoveriesContinuation.yield(attempt)
                    listeners.forEach { $0.yield(count) }
                    return
                case .closedMeanwhile:
                    try? await session.close()
                    return
                case .lost:
                    continue
                }
            } catch {
                self.logger.info("recovery attempt failed", metadata: ["attempt": "\(attempt)", "node": "\(endpoints[index])", "error": "\(error)"])
                if let maximum = self.configuration.recovery.maximumAttempts, attempt >= maximum {
                    let failure = AMQPError(.recoveryFailed, "gave up reconnecting after \(attempt) attempts: \(error)")
                    self.state.withLockedValue { $0.phase = .closed(failure) }
                    self.failRecoveryWaiters(failure)
                    self.finishEverything(failure)
                    return
                }
            }
        }
    }

    /// Reopens channels (with qos, confirm and tx modes), re-declares exchanges, queues
    /// and bindings, and resumes consumers, on a new session.
    private func restoreTopology(on session: Session) async throws {
        let (channels, topology) = self.state.withLockedValue { state in
            (state.channels.values.sorted { $0.channelID < $1.channelID }, state.topology)
        }
        for channel in channels {
            try await channel.reopen(on: session)
        }
        // Entities are re-declared on a channel of their own, so that one refused
        // declaration (the broker closes the channel) does not stop the rest.
        let usedIDs = Set(channels.map(\.channelID))
        let top = session.negotiated.channelMax == 0 ? UInt16.max : session.negotiated.channelMax
        guard let recoveryID = stride(from: top, to: 0, by: -1).first(where: { !usedIDs.contains($0) }) else { return }
        let recoveryChannel = AMQPChannel(channelID: recoveryID, connection: self)
        func openRecoveryChannel() async throws {
            try await session.openChannel(recoveryID, handle: recoveryChannel)
        }
        try await openRecoveryChannel()
        func replay(_ what: String, _ method: AMQP.Method) async throws -> CallResult? {
            do {
                return try await session.call(recoveryID, method)
            } catch let error as AMQPError where error.code == .channelClosed {
                self.logger.warning("could not recover \(what)", metadata: ["error": "\(error)"])
                try await openRecoveryChannel()
                return nil
            }
        }
        for exchange in topology.exchanges {
            _ = try await replay("exchange \(exchange.exchange)", .exchangeDeclare(exchange))
        }
        for queue in topology.queues {
            var declare = queue.declare
            if queue.serverNamed { declare.queue = "" }
            if case .method(.queueDeclareOk(let ok))? = try await replay("queue \(queue.declare.queue)", .queueDeclare(declare)), queue.serverNamed {
                self.state.withLockedValue { $0.topology.queueRenamed(from: queue.declare.queue, to: ok.queue) }
            }
        }
        let renamed = self.state.withLockedValue { $0.topology }
        for bind in topology.exchangeBindings {
            _ = try await replay("binding \(bind.source) -> \(bind.destination)", .exchangeBind(bind))
        }
        for var bind in topology.queueBindings {
            bind.queue = renamed.currentName(ofQueue: bind.queue)
            _ = try await replay("binding \(bind.exchange) -> \(bind.queue)", .queueBind(bind))
        }
        try await session.closeChannel(recoveryID)
        for channel in channels {
            try await channel.resumeConsumers(on: session, names: renamed)
        }
    }

    private func failRecoveryWaiters(_ error: AMQPError) {
        let waiters = self.state.withLockedValue { state in
            defer { state.recoveryWaiters.removeAll() }
            return Array(state.recoveryWaiters.values)
        }
        waiters.forEach { $0.resume(throwing: error) }
    }

    /// The connection is gone for good: consumers end (throwing on failure), streams finish.
    private func finishEverything(_ error: AMQPError?) {
        let channels = self.state.withLockedValue { state in
            defer { state.channels.removeAll() }
            return Array(state.channels.values)
        }
        let failure = error ?? AMQPError(.connectionClosed, "the connection was closed by the application")
        for channel in channels {
            channel.closed(failure, consumers: [])
        }
        self.blockedContinuation.finish()
        self.recoveriesContinuation.finish()
        let listeners = self.state.withLockedValue { state in
            defer { state.recoveryListeners.removeAll() }
            return Array(state.recoveryListeners.values)
        }
        listeners.forEach { $0.finish() }
    }

    /// Whether a queue named `name` exists now: a passive declare on a channel of its own
    /// (a 404 closes that channel, not the caller's).
    func queueExists(_ name: String) async throws -> Bool {
        let probe = try await self.openChannel()
        do {
            _ = try await probe.queueDeclare(name: self.currentName(ofQueue: name), passive: true)
            try? await probe.close()
            return true
        } catch let error as AMQPError where error.replyCode == ReplyCode.notFound {
            return false
        } catch {
            try? await probe.close()
            throw error
        }
    }

    /// See `AMQPChannel.markConsumers(ofQueue:deleting:)`: on every channel.
    func markConsumers(ofQueue queue: String, deleting: Bool) {
        let channels = self.state.withLockedValue { Array($0.channels.values) }
        for channel in channels { channel.markConsumers(ofQueue: queue, deleting: deleting) }
    }

    func channelReleased(_ channelID: UInt16) {
        _ = self.state.withLockedValue { $0.channels.removeValue(forKey: channelID) }
    }

    func updateTopology(_ update: (inout TopologyRecord) -> Void) {
        self.state.withLockedValue { update(&$0.topology) }
    }

    func currentName(ofQueue name: String) -> String {
        self.state.withLockedValue { $0.topology.currentName(ofQueue: name) }
    }
}

extension AMQPConnection: Service {
    /// Runs until graceful shutdown, then closes the connection.
    public func run() async throws {
        try? await gracefulShutdown()
        try await self.close()
    }
}
