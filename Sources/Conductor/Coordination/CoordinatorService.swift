import AMQPClient
import AMQPProtocol
import Foundation
import Logging
import Mesh
import MeshClient
import NIOCore
import ServiceLifecycle
import Synchronization

/// One `_method_request` to the coordinator, as a handler sees it.
public struct CoordinatorCall: Sendable {
    /// The decoded request (`_method_name`, `_arguments`).
    public var method: MethodRequest
    /// The broker-validated `user_id` of the caller (nil when the message carried none).
    public var userID: String?
    /// The caller's reply queue: exclusive to the caller's connection, so it also tells
    /// whether the caller is still connected (locks use it as their owner).
    public var replyTo: String
    /// The whole message, for handlers that need more (headers, correlation id).
    public var message: MeshMessage
}

/// A handler's answer: the `_arguments` of a `_method_response`, or an `_exception`.
public typealias CoordinatorReply = Result<MethodResponse, ExceptionBody>

/// The coordinator on the bus: a QMF agent named `conductor:coordinator:<scope>` that takes
/// `_method_request`s on `qmf.default.direct` with that routing key and answers each to its
/// `reply_to` with the same `correlation_id` (docs/protocol.md, "Coordinator").
///
/// Built in: the lock methods (`lock_acquire`, `lock_renew`, `lock_release`,
/// `lock_force_release`, `lock_status`) and `signal` / `wait`, backed by `store`. Others
/// register more methods with `register(method:handler:)` before or while the service
/// runs, e.g.:
///
/// ```swift
/// let coordinator = try CoordinatorService(broker: configuration, store: sqliteStore, logger: logger)
/// coordinator.register(method: "launch") { call in
///     let request: MyLaunchRequest = try call.method.decodeArguments()   // map errors to .failure
///     return .success(try MethodResponse(encoding: result))
/// }
/// // then run it in the ServiceGroup of `conductor serve`:
/// ServiceGroup(services: [broker, coordinator], ...)
/// ```
///
/// Handlers run concurrently, each request in its own task; a handler may wait (a lock
/// acquire waits for its turn). `run()` connects (retrying while the broker is not there
/// yet), declares the exclusive queue `conductor.coordinator.<scope>` (a second
/// coordinator for the same scope is refused with 405), consumes, and checks lock owners'
/// connections. It returns on graceful shutdown.
public final class CoordinatorService: ServiceLifecycle.Service, Sendable {
    public typealias Handler = @Sendable (CoordinatorCall) async -> CoordinatorReply

    public let name: AgentName
    public let scope: String
    /// The AMQP user allowed to force a lock's release (`lock_force_release`): the
    /// coordinator's own, the one its agents trust.
    public let trustedUser: String
    public let locks: LockService
    public let events: EventService

    private let broker: AMQPConnectionConfiguration
    private let logger: Logger
    private let handlers: Mutex<[String: Handler]>
    private let readiness = ReadySignal()
    /// How often the connections of lock owners are checked.
    private let ownerCheckInterval: Duration
    private let tickInterval: Duration
    /// Who is alive, from the heartbeats this coordinator consumes (`live_agents`).
    private let registry: SharedAgentRegistry
    /// Whose heartbeats count: on a bus whose logins it makes, only an agent's own.
    private let answers: AnswerCheck
    private let clock: CoordinationClock

    /// - Parameters:
    ///   - broker: where to connect (the coordinator's own user: its `user_id` is not checked).
    ///   - scope: the coordinator's instance name; clients address `conductor:coordinator:<scope>`.
    ///   - store: where locks, tokens and events persist (`SQLiteStateStore` and
    ///     `PostgresStateStore` conform), read when `run()` starts;
    ///     nil keeps them in memory only (tests, throwaway meshes).
    ///   - trustedUser: who may force a lock's release; nil: the broker login's user.
    ///   - answers: whose heartbeats the live-agent registry takes (`.ownLogins` on a bus
    ///     whose logins the coordinator makes, so one node cannot register others).
    ///   - registrySweep: how long after it starts listening the registry calls itself
    ///     complete (the agents' answers to its one locate broadcast arrive meanwhile).
    public init(
        broker: AMQPConnectionConfiguration, scope: String = Coordinator.defaultScope, store: (any CoordinationStore)? = nil,
        trustedUser: String? = nil, answers: AnswerCheck = .any, logger: Logger,
        clock: CoordinationClock = .system, ownerCheckInterval: Duration = .milliseconds(500), tickInterval: Duration = .milliseconds(20),
        registrySweep: Duration = .seconds(2)
    ) throws(CoordinationError) {
        do {
            self.name = try Coordinator.name(scope: scope)
        } catch {
            throw CoordinationError(.invalidScope, "scope '\(scope)' cannot name a coordinator: \(error.message)")
        }
        self.scope = scope
        self.broker = broker
        self.trustedUser = trustedUser ?? broker.username
        var logger = logger
        logger[metadataKey: "coordinator"] = "\(self.name)"
        self.logger = logger
        self.ownerCheckInterval = ownerCheckInterval
        self.tickInterval = tickInterval
        self.registry = SharedAgentRegistry(AgentRegistry(sweepMilliseconds: registrySweep.wholeMilliseconds))
        self.answers = answers
        self.clock = clock
        let store = store ?? InMemoryCoordinationStore()
        self.locks = LockService(store: store, clock: clock, logger: logger)
        self.events = EventService(store: store, clock: clock)
        self.handlers = Mutex([:])
        self.registerBuiltins()
    }

    /// Adds (or replaces) the handler of `method`. Safe to call while running.
    public func register(method: String, handler: @escaping Handler) {
        self.handlers.withLock { $0[method] = handler }
    }

    /// The methods answered, sorted (for errors naming what is known).
    public var methods: [String] { self.handlers.withLock { $0.keys.sorted() } }

    /// Returns once the coordinator consumes its queue (requests sent from then on are
    /// answered), or throws if `run()` failed before that.
    public func waitUntilReady() async throws {
        try await self.readiness.wait()
    }

    public func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await self.serve()
            } onGracefulShutdown: {
                self.readiness.stop()
            }
        } catch {
            self.readiness.fail(error)
            throw error
        }
    }

    // MARK: - Serving

    private func serve() async throws {
        // The lock table and the latched events first: a store that cannot be read fails the start.
        try await self.locks.load()
        try await self.events.load()
        guard let connection = try await self.connect() else { return }
        do {
            let channel = try await connection.openChannel()
            try await channel.exchangeDeclare(name: QMF.topicExchange, type: "topic", durable: true)
            try await channel.exchangeDeclare(name: QMF.directExchange, type: "direct", durable: true)
            let queue = Coordinator.queue(scope: self.scope)
            do {
                _ = try await channel.queueDeclare(name: queue, exclusive: true)
            } catch let error as AMQPError where error.replyCode == 405 {
                throw CoordinationError(.alreadyRunning, "another coordinator already serves scope '\(self.scope)' on this broker (queue \(queue) is in use)")
            }
            try await channel.queueBind(queue: queue, exchange: QMF.directExchange, routingKey: self.name.description)
            let consumer = try await channel.consume(queue: queue, noAck: true)
            self.logger.info("coordinator ready", metadata: ["queue": "\(queue)", "broker": "\(self.broker.redactedURL)"])
            self.readiness.ready()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.tickLoop() }
                group.addTask { await self.ownerCheckLoop(connection) }
                group.addTask { await self.listenToHeartbeats(connection) }
                group.addTask { await self.readiness.waitForStop() }
                group.addTask {
                    await withTaskGroup(of: Void.self) { requests in
                        do {
                            for try await delivery in consumer {
                                requests.addTask { await self.handle(delivery, channel: channel) }
                            }
                        } catch {
                            if !Task.isCancelled { self.logger.error("request consumer failed", metadata: ["error": "\(error)"]) }
                        }
                    }
                }
                _ = await group.next()
                // Waiting acquires and waits are answered now, so their request tasks end.
                await self.locks.close()
                await self.events.close()
                group.cancelAll()
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
        self.logger.info("coordinator stopped")
    }

    /// Connects, retrying with backoff while the broker is unreachable. Nil on shutdown.
    private func connect() async throws -> AMQPConnection? {
        var attempt = 0
        while !self.readiness.isStopped && !Task.isCancelled {
            do {
                return try await AMQPConnection.connect(self.broker, logger: self.logger)
            } catch let error as AMQPError where error.code == .authenticationFailed || error.code == .invalidURL {
                throw error
            } catch {
                let delay = min(Duration.milliseconds(100) * (1 << min(attempt, 6)), .seconds(5))
                attempt += 1
                self.logger.warning("broker not reachable, retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
        return nil
    }

    private func handle(_ delivery: AMQPMessage, channel: AMQPChannel) async {
        guard let replyTo = delivery.properties.replyTo, !replyTo.isEmpty else {
            self.logger.info("request without reply_to dropped", metadata: ["routing_key": "\(delivery.routingKey)"])
            return
        }
        let request: MeshMessage
        do {
            request = try MeshMessage(properties: delivery.properties, body: delivery.body)
        } catch {
            let reply = MeshMessage(opcode: .exception, body: ExceptionBody(code: .invalidRequest, text: error.message).value, agent: self.name.description, correlationID: delivery.properties.correlationId)
            self.publish(reply, to: replyTo, channel: channel)
            return
        }
        let reply = await self.answer(request, replyTo: replyTo)
        self.publish(reply, to: replyTo, channel: channel)
    }

    /// The reply to one request (exposed for the agent-less fast path and tests).
    func answer(_ request: MeshMessage, replyTo: String) async -> MeshMessage {
        guard request.opcode == .methodRequest else {
            return request.exceptionResponse(ExceptionBody(code: .notImplemented, text: "the coordinator answers _method_request only, not \(request.opcode.rawValue)"), agent: self.name)
        }
        let method: MethodRequest
        do {
            method = try Self.methodRequest(request.body)
        } catch {
            return request.exceptionResponse(ExceptionBody(code: .invalidRequest, text: "invalid _method_request: \(error.message)"), agent: self.name)
        }
        guard let handler = self.handlers.withLock({ $0[method.methodName] }) else {
            let known = self.methods.joined(separator: ", ")
            return request.exceptionResponse(ExceptionBody(code: .notFound, text: "method '\(method.methodName)' is unknown (known: \(known))"), agent: self.name)
        }
        let call = CoordinatorCall(method: method, userID: request.userID, replyTo: replyTo, message: request)
        switch await handler(call) {
        case .success(let response):
            // What `MethodResponse` encodes to, built directly (no JSON round trip).
            return request.response(opcode: .methodResponse, body: .map(["_arguments": .map(response.arguments)]), agent: self.name)
        case .failure(let exception):
            return request.exceptionResponse(exception, agent: self.name)
        }
    }

    /// Reads a `_method_request` body. The usual shape (method name and arguments only) is
    /// taken straight from the tree; anything else goes through `MethodRequest`'s Codable
    /// conformance, which also words the errors.
    static func methodRequest(_ body: MeshValue) throws(MeshError) -> MethodRequest {
        if case .map(let map) = body, map["_object_id"] == nil, case .string(let name)? = map["_method_name"] {
            switch map["_arguments"] {
            case nil, .null?: return MethodRequest(methodName: name)
            case .map(let arguments)?: return MethodRequest(methodName: name, arguments: arguments)
            default: break
            }
        }
        return try body.decode(as: MethodRequest.self)
    }

    private func publish(_ message: MeshMessage, to replyTo: String, channel: AMQPChannel) {
        do {
            _ = try channel.publish(message.bodyBuffer(), exchange: "", routingKey: replyTo, properties: message.properties())
        } catch {
            self.logger.warning("reply not sent", metadata: ["reply_to": "\(replyTo)", "error": "\(error)"])
        }
    }

    // MARK: - Leases and owners

    private func tickLoop() async {
        while !Task.isCancelled {
            await self.locks.timePassed()
            await self.events.timePassed()
            try? await Task.sleep(for: self.tickInterval)
        }
    }

    /// Checks each lock owner's queue with a passive declare on a scratch channel:
    /// 405 RESOURCE_LOCKED (or declare-ok) means its connection is alive, 404 means it is
    /// gone and its locks are released. Anything else (the bus itself is down) decides nothing.
    private func ownerCheckLoop(_ connection: AMQPConnection) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: self.ownerCheckInterval)
            for owner in await self.locks.owners() {
                if Task.isCancelled { return }
                if await Self.ownerAlive(owner, connection: connection) == false {
                    self.logger.info("lock owner disconnected; releasing its locks", metadata: ["owner": "\(owner)"])
                    await self.locks.ownerGone(owner)
                }
            }
        }
    }

    /// True: alive, false: gone, nil: could not tell.
    static func ownerAlive(_ owner: String, connection: AMQPConnection) async -> Bool? {
        guard let channel = try? await connection.openChannel() else { return nil }
        do {
            _ = try await channel.queueDeclare(name: owner, passive: true)
            try? await channel.close()
            return true
        } catch let error as AMQPError {
            switch error.replyCode {
            case 405: return true
            case 404: return false
            default:
                try? await channel.close()
                return nil
            }
        } catch {
            try? await channel.close()
            return nil
        }
    }

    // MARK: - Live agents

    /// Feeds the registry: a queue of its own bound to every heartbeat, and one locate
    /// broadcast answered to that queue, so agents up before this coordinator are known
    /// within the sweep rather than one heartbeat interval. Returns when the consumer
    /// ends (shutdown, or the bus is gone: the registry then says it is not complete).
    private func listenToHeartbeats(_ connection: AMQPConnection) async {
        let sweepID = "registry-sweep-\(UUID().uuidString.prefix(8).lowercased())"
        do {
            let channel = try await connection.openChannel()
            let queue = try await channel.queueDeclare(exclusive: true, autoDelete: true).name
            try await channel.queueBind(queue: queue, exchange: QMF.topicExchange, routingKey: QMF.Subject.allHeartbeats)
            let consumer = try await channel.consume(queue: queue, noAck: true)
            var locate = try MeshMessage(opcode: .agentLocateRequest, encoding: AgentLocateRequest())
            locate.replyTo = queue
            locate.correlationID = sweepID
            locate.expiration = .milliseconds(self.registry.withLock { $0.sweep })
            _ = try channel.publish(locate.bodyBuffer(), exchange: QMF.topicExchange, routingKey: QMF.Subject.agentLocate, properties: locate.properties())
            self.registry.withLock { $0.listening(at: self.clock.now()) }
            for try await delivery in consumer {
                guard let message = try? MeshMessage(properties: delivery.properties, body: delivery.body),
                    message.opcode == .agentHeartbeatIndication || (message.opcode == .agentLocateResponse && message.correlationID == sweepID),
                    let info = try? AgentInfo(body: message.body)
                else { continue }
                // The name in the body must be the sender's (and, on a bus of per-agent
                // logins, `user_id` that agent's login).
                guard message.agent == nil || message.agent == info.name.description else { continue }
                let now = self.clock.now()
                if self.answers == .ownLogins, info.name.brokerUser != message.userID {
                    if self.registry.withLock({ $0.refused(info, at: now) }) {
                        self.logger.warning(
                            "heartbeats ignored: not sent under the login of the agent they name (live_agents leaves it out)",
                            metadata: ["agent": "\(info.name)", "user_id": "\(message.userID ?? "-")"])
                    }
                    continue
                }
                self.registry.withLock { _ = $0.heard(info, at: now) }
            }
        } catch {
            if !Task.isCancelled { self.logger.warning("heartbeat consumer ended; live_agents answers incomplete until restart", metadata: ["error": "\(error)"]) }
        }
        self.registry.withLock { $0.deaf() }
    }

    // MARK: - Built-in methods

    private func registerBuiltins() {
        let locks = self.locks
        let events = self.events
        let trustedUser = self.trustedUser
        let logger = self.logger
        self.register(method: Coordinator.Method.lockAcquire) { call in
            await Self.decoding(call) { (request: LockAcquireRequest) throws(MeshError) in
                try request.validate()
                var request = request
                // The owner is the caller's own connection unless the caller asked for a lease-only lock.
                if request.owner != nil { request.owner = call.replyTo }
                return await locks.acquire(request, by: call.userID).flatMap(Self.encode)
            }
        }
        self.register(method: Coordinator.Method.lockRenew) { call in
            await Self.decoding(call) { (request: LockTokenRequest) throws(MeshError) in
                await locks.renew(request, by: call.userID).flatMap(Self.encode)
            }
        }
        self.register(method: Coordinator.Method.lockRelease) { call in
            await Self.decoding(call) { (request: LockTokenRequest) throws(MeshError) in
                await locks.release(request, by: call.userID).flatMap(Self.encode)
            }
        }
        self.register(method: Coordinator.Method.lockForceRelease) { call in
            await Self.decoding(call) { (request: LockTokenRequest) throws(MeshError) in
                // `user_id` is checked by the broker against the login, so it names the caller.
                guard let user = call.userID, user == trustedUser else {
                    logger.warning(
                        "forced lock release refused: not the trusted user",
                        metadata: ["lock": "\(request.lock)", "token": "\(request.token)", "user_id": "\(call.userID ?? "-")"])
                    let sender = call.userID.map { "user_id '\($0)'" } ?? "a request without user_id"
                    return .failure(
                        ExceptionBody(
                            code: .forbidden,
                            text: "\(sender) is not the coordinator's trusted user, who alone may force a release; the holder of lock '\(request.lock)' releases it with its holder_key"))
                }
                return await locks.forceRelease(request, by: user).flatMap(Self.encode)
            }
        }
        self.register(method: Coordinator.Method.lockStatus) { call in
            await Self.decoding(call) { (request: LockStatusRequest) throws(MeshError) in
                try LockNames.validate(request.lock)
                return Self.encode(await locks.status(request.lock))
            }
        }
        let registry = self.registry
        let clock = self.clock
        // A read, as `lock_status`: any caller that may publish to the coordinator.
        self.register(method: Coordinator.Method.liveAgents) { call in
            let request: LiveAgentsRequest
            do {
                request = try LiveAgentsRequest(arguments: call.method.arguments)
            } catch let error as MeshError {
                return .failure(ExceptionBody(code: .invalidRequest, text: error.message))
            } catch {
                return .failure(ExceptionBody(code: .invalidRequest, text: "\(error)"))
            }
            let now = clock.now()
            let list = registry.withLock { $0.list(request, now: now) }
            return .success(MethodResponse(arguments: list.arguments))
        }
        self.register(method: Coordinator.Method.signal) { call in
            await Self.decoding(call) { (request: SignalRequest) throws(MeshError) in
                try request.validate()
                return await events.signal(request).flatMap(Self.encode)
            }
        }
        self.register(method: Coordinator.Method.wait) { call in
            await Self.decoding(call) { (request: WaitRequest) throws(MeshError) in
                try request.validate()
                return await events.wait(request).flatMap(Self.encode)
            }
        }
    }

    private static func decoding<Arguments: Decodable>(
        _ call: CoordinatorCall, _ body: (Arguments) async throws(MeshError) -> CoordinatorReply
    ) async -> CoordinatorReply {
        do {
            let arguments: Arguments = try call.method.decodeArguments()
            return try await body(arguments)
        } catch {
            return .failure(ExceptionBody(code: .invalidRequest, text: error.message))
        }
    }

    static func encode(_ value: some Encodable) -> CoordinatorReply {
        do {
            return .success(try MethodResponse(encoding: value))
        } catch {
            return .failure(ExceptionBody(code: .internalError, text: "cannot encode the result: \(error.message)"))
        }
    }
}

struct LockStatusRequest: Decodable {
    var lock: String
}

/// Ready / failed / stopped, waited on by `waitUntilReady()` and the serving loop.
private final class ReadySignal: Sendable {
    private enum State {
        case starting([CheckedContinuation<Void, any Error>])
        case ready
        case failed(any Error)
    }
    private let state = Mutex<State>(.starting([]))
    private let stopped = Mutex(false)
    private let stops: AsyncStream<Void>
    private let stopsContinuation: AsyncStream<Void>.Continuation

    init() {
        (self.stops, self.stopsContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    func ready() { self.settle(nil) }
    func fail(_ error: any Error) { self.settle(error) }

    private func settle(_ error: (any Error)?) {
        let waiting: [CheckedContinuation<Void, any Error>] = self.state.withLock { state in
            guard case .starting(let waiting) = state else { return [] }
            state = error.map { .failed($0) } ?? .ready
            return waiting
        }
        for continuation in waiting {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome: Result<Void, any Error>? = self.state.withLock { state in
                switch state {
                case .starting(var waiting):
                    waiting.append(continuation)
                    state = .starting(waiting)
                    return nil
                case .ready: return .success(())
                case .failed(let error): return .failure(error)
                }
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    var isStopped: Bool { self.stopped.withLock { $0 } }

    func stop() {
        self.stopped.withLock { $0 = true }
        self.stopsContinuation.finish()
        self.fail(CoordinationError(.stopped, "the coordinator stopped before it was ready"))
    }

    /// Returns once `stop()` was called, or the calling task is cancelled. One caller only.
    func waitForStop() async {
        for await _ in self.stops {}
    }
}
