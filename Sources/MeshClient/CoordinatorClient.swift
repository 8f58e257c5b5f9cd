import AMQPClient
import AMQPProtocol
import Foundation
import Logging
import Mesh
import NIOCore
import NIOPosix
import Synchronization

/// Why a coordinator call failed.
public struct CoordinatorCallError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
        /// Nothing consumes `conductor:coordinator:<scope>` (the broker returned the request).
        public static let noCoordinator = Code("no-coordinator")
        /// No answer before the timeout.
        public static let timeout = Code("timeout")
        /// The coordinator answered with an `_exception` (see `exception`).
        public static let refused = Code("refused")
        /// The bus failed (connection lost, publish refused).
        public static let bus = Code("bus")
        /// The answer could not be read.
        public static let invalidReply = Code("invalid-reply")
    }

    public var code: Code
    public var message: String
    public var exception: ExceptionBody?

    public init(_ code: Code, _ message: String, exception: ExceptionBody? = nil) {
        self.code = code
        self.message = message
        self.exception = exception
    }

    public var description: String { self.message }
}

/// Something that calls the coordinator: `CoordinatorClient` over the bus, or
/// `LocalSocketClient` through the local agent. The lock and event helpers are built on
/// `call`, so both offer the same API.
public protocol CoordinatorCalling: Sendable {
    func call(_ method: String, arguments: [String: MeshValue], timeout: Duration) async throws(CoordinatorCallError) -> MethodResponse
    /// Put in `owner` of an owned lock: the coordinator replaces it with the caller's reply
    /// queue, the local agent with its own and releases for this caller when it disconnects.
    var ownerMarker: String { get }
    func close() async
}

/// Calls the coordinator (`conductor:coordinator:<scope>`) over one bus connection, with
/// one exclusive reply queue for all calls, so a call costs one publish and one delivery.
///
/// The reply queue doubles as the caller's liveness: locks acquired with `owned: true`
/// are released by the coordinator as soon as this queue is gone (the connection closed
/// or dropped). Many calls may run at once; each waits for its own correlation id.
public final class CoordinatorClient: CoordinatorCalling {
    public let coordinator: AgentName
    /// This client's exclusive reply queue (a lock's owner).
    public let replyQueue: String
    public let userID: String
    public var ownerMarker: String { self.replyQueue }
    private let connection: AMQPConnection
    private let ownsConnection: Bool
    private let channel: AMQPChannel
    private let calls = Mutex(Calls())
    private let readers = Mutex<[Task<Void, Never>]>([])
    /// Correlation ids: a counter is unique within this client's reply queue, and free
    /// (a UUID reads /dev/urandom on Linux, three syscalls per call).
    private let nextCorrelation = Atomic<UInt64>(0)

    private init(connection: AMQPConnection, ownsConnection: Bool, channel: AMQPChannel, coordinator: AgentName, replyQueue: String, userID: String) {
        self.connection = connection
        self.ownsConnection = ownsConnection
        self.channel = channel
        self.coordinator = coordinator
        self.replyQueue = replyQueue
        self.userID = userID
    }

    /// Connects to the bus and readies the reply queue.
    public static func connect(
        _ configuration: AMQPConnectionConfiguration, scope: String = Coordinator.defaultScope,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "conductor.coordinator-client", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> CoordinatorClient {
        let connection = try await AMQPConnection.connect(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            return try await Self.make(connection: connection, ownsConnection: true, scope: scope)
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Shares an existing connection (the agent's); `close()` leaves the connection open.
    public static func using(_ connection: AMQPConnection, scope: String = Coordinator.defaultScope) async throws -> CoordinatorClient {
        try await Self.make(connection: connection, ownsConnection: false, scope: scope)
    }

    private static func make(connection: AMQPConnection, ownsConnection: Bool, scope: String) async throws -> CoordinatorClient {
        let coordinator = try Coordinator.name(scope: scope)
        let channel = try await QMFExchanges.ensure([(QMF.directExchange, "direct")], on: connection)
        // Named by the client so a recovered connection declares the same owner queue again.
        let queue = "conductor.reply.\(UUID().uuidString.lowercased())"
        _ = try await channel.queueDeclare(name: queue, exclusive: true, autoDelete: true)
        let consumer = try await channel.consume(queue: queue, noAck: true)
        let client = CoordinatorClient(
            connection: connection, ownsConnection: ownsConnection, channel: channel, coordinator: coordinator, replyQueue: queue,
            userID: connection.configuration.username)
        let replies = Task { await client.readReplies(consumer) }
        let returns = Task { await client.readReturns() }
        let timeouts = Task { await client.expireCalls() }
        client.readers.withLock { $0 = [replies, returns, timeouts] }
        return client
    }

    public func close() async {
        let readers = self.readers.withLock { readers in
            defer { readers = [] }
            return readers
        }
        for reader in readers { reader.cancel() }
        let sweeper = self.calls.withLock { calls in
            calls.closed = true
            defer { calls.parkedSweeper = nil }
            return calls.parkedSweeper
        }
        sweeper?.resume(returning: false)
        self.failAll(CoordinatorCallError(.bus, "the coordinator client was closed"))
        if self.ownsConnection {
            try? await self.connection.close()
        } else {
            _ = try? await self.channel.queueDelete(name: self.replyQueue)
            try? await self.channel.close()
        }
    }

    // MARK: - Calls

    /// Calls `method` with `arguments`; the `_method_response`, or an error saying whether
    /// the coordinator refused (with its exception), is missing, or did not answer in time.
    public func call(_ method: String, arguments: [String: MeshValue], timeout: Duration) async throws(CoordinatorCallError) -> MethodResponse {
        // The body of a `MethodRequest` without object id, built as a tree
        // rather than through its Codable conformance (a JSON round trip per call).
        var message = MeshMessage(opcode: .methodRequest, body: .map(["_method_name": .string(method), "_arguments": .map(arguments)]))
        let correlationID = String(self.nextCorrelation.wrappingAdd(1, ordering: .relaxed).newValue)
        message.correlationID = correlationID
        message.replyTo = self.replyQueue
        message.userID = self.userID
        let reply: MeshMessage
        do {
            reply = try await self.exchange(message, correlationID: correlationID, timeout: timeout)
        } catch let error as CoordinatorCallError {
            throw error
        } catch {
            throw CoordinatorCallError(.bus, "\(method): \(error)")
        }
        switch reply.opcode {
        case .methodResponse:
            if case .map(let body) = reply.body, case .map(let arguments)? = body["_arguments"] {
                return MethodResponse(arguments: arguments)
            }
            do {
                // Not the usual shape: the Codable conformance decides, and names what is wrong.
                return try reply.decodeBody(MethodResponse.self)
            } catch {
                throw CoordinatorCallError(.invalidReply, "\(method): unreadable answer: \(error.message)")
            }
        case .exception:
            let exception = (try? reply.decodeBody(ExceptionBody.self)) ?? ExceptionBody(code: .internalError, text: "unreadable exception")
            throw CoordinatorCallError(.refused, "\(method): \(exception.text)", exception: exception)
        default:
            throw CoordinatorCallError(.invalidReply, "\(method): unexpected answer \(reply.opcode.rawValue)")
        }
    }

    private func exchange(_ message: MeshMessage, correlationID: String, timeout: Duration) async throws -> MeshMessage {
        try await withCheckedThrowingContinuation { continuation in
            let deadline = ContinuousClock.now + timeout
            let (open, sweeper) = self.calls.withLock { calls -> (Bool, CheckedContinuation<Bool, Never>?) in
                guard !calls.closed else { return (false, nil) }
                calls.waiting[correlationID] = Waiting(continuation: continuation, deadline: deadline, timeout: timeout)
                defer { calls.parkedSweeper = nil }
                return (true, calls.parkedSweeper)
            }
            guard open else {
                continuation.resume(throwing: CoordinatorCallError(.bus, "the coordinator client was closed"))
                return
            }
            sweeper?.resume(returning: true)
            do {
                var properties = message.properties()
                properties.expiration = String(max(1, timeout.wholeMilliseconds))
                _ = try self.channel.publish(
                    message.bodyBuffer(), exchange: QMF.directExchange, routingKey: self.coordinator.description, mandatory: true,
                    properties: properties)
            } catch {
                self.fail(correlationID, CoordinatorCallError(.bus, "request not sent: \(error)"))
            }
        }
    }

    private func readReplies(_ consumer: AMQPConsumer) async {
        do {
            for try await delivery in consumer {
                guard let correlation = delivery.properties.correlationId,
                    let continuation = self.calls.withLock({ $0.waiting.removeValue(forKey: correlation)?.continuation })
                else { continue }
                do {
                    continuation.resume(returning: try MeshMessage(properties: delivery.properties, body: delivery.body))
                } catch {
                    continuation.resume(throwing: CoordinatorCallError(.invalidReply, "unreadable answer: \(error.message)"))
                }
            }
        } catch {}
        self.failAll(CoordinatorCallError(.bus, "the reply queue stopped delivering (connection lost?)"))
    }

    private func readReturns() async {
        for await returned in self.channel.returns {
            guard let correlation = returned.properties.correlationId else { continue }
            self.fail(correlation, CoordinatorCallError(.noCoordinator, "no coordinator serves \(self.coordinator) on this bus (is `conductor serve` running?): \(returned.replyCode) \(returned.replyText)"))
        }
    }

    private func fail(_ correlationID: String, _ error: CoordinatorCallError) {
        self.calls.withLock { $0.waiting.removeValue(forKey: correlationID) }?.continuation.resume(throwing: error)
    }

    private func failAll(_ error: CoordinatorCallError) {
        let all = self.calls.withLock { calls in
            defer { calls.waiting = [:] }
            return Array(calls.waiting.values)
        }
        for call in all { call.continuation.resume(throwing: error) }
    }

    // MARK: - Timeouts

    /// Calls waiting for their answer, and the timeout sweeper when it is parked.
    private struct Calls {
        var waiting: [String: Waiting] = [:]
        /// Resumed with true by the next call, with false by `close()`.
        var parkedSweeper: CheckedContinuation<Bool, Never>?
        var closed = false
    }

    private struct Waiting {
        var continuation: CheckedContinuation<MeshMessage, any Error>
        var deadline: ContinuousClock.Instant
        var timeout: Duration
    }

    /// How late a timeout may fire.
    static let timeoutResolution: Duration = .milliseconds(25)

    /// Fails the calls past their deadline. One task per client rather than a timer task
    /// per call, which cost a task, a dispatch timer and two thread wake-ups per call
    /// (docs/benchmarks.md, "Locks"). It parks while no call waits: an idle client costs nothing.
    private func expireCalls() async {
        while await self.nextSweep() {
            try? await Task.sleep(for: Self.timeoutResolution)
            let now = ContinuousClock.now
            let expired = self.calls.withLock { calls in
                let expired = calls.waiting.filter { $0.value.deadline <= now }
                for correlation in expired.keys { calls.waiting.removeValue(forKey: correlation) }
                return Array(expired.values)
            }
            for call in expired {
                call.continuation.resume(throwing: CoordinatorCallError(.timeout, "\(self.coordinator) did not answer within \(call.timeout)"))
            }
        }
    }

    /// True at once while calls wait; otherwise parks until a call comes (true) or the
    /// client closes (false).
    private func nextSweep() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let now: Bool? = self.calls.withLock { calls in
                if calls.closed { return false }
                if !calls.waiting.isEmpty { return true }
                calls.parkedSweeper = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

}

// MARK: - Locks and events

extension CoordinatorCalling {
    /// `call` with typed arguments and result.
    public func call<Result: Decodable>(
        _ method: String, _ arguments: some Encodable, timeout: Duration, as: Result.Type = Result.self
    ) async throws(CoordinatorCallError) -> Result {
        let request: MethodRequest
        do {
            request = try MethodRequest(methodName: method, encoding: arguments)
        } catch {
            throw CoordinatorCallError(.invalidReply, "cannot encode the request: \(error.message)")
        }
        let response = try await self.call(method, arguments: request.arguments, timeout: timeout)
        do {
            return try response.decodeArguments(Result.self)
        } catch {
            throw CoordinatorCallError(.invalidReply, "\(method): unreadable answer: \(error.message)")
        }
    }

    /// Acquires `lock`, waiting up to `wait`. `owned`: the lock ends with this client's
    /// connection too (not only its lease). The call itself waits `wait` plus `slack`.
    public func acquire(
        lock: String, limit: Int = 1, ttl: Duration, wait: Duration, holder: String, owned: Bool = true, slack: Duration = .seconds(5)
    ) async throws(CoordinatorCallError) -> LockGrant {
        let request = LockAcquireRequest(
            lock: lock, limit: limit, ttlMilliseconds: ttl.wholeMilliseconds, waitMilliseconds: wait.wholeMilliseconds,
            owner: owned ? self.ownerMarker : nil, holder: holder)
        return try await self.call(Coordinator.Method.lockAcquire, request, timeout: wait + slack, as: LockGrant.self)
    }

    /// Extends the lease of the holder of `token`, proven by the `holderKey` its grant
    /// carried (refused with 403 without it).
    public func renew(
        lock: String, token: Int64, holderKey: String?, ttl: Duration? = nil, timeout: Duration = .seconds(5)
    ) async throws(CoordinatorCallError) -> LockTokenResult {
        let request = LockTokenRequest(lock: lock, token: token, holderKey: holderKey, ttlMilliseconds: ttl.map(\.wholeMilliseconds))
        return try await self.call(Coordinator.Method.lockRenew, request, timeout: timeout, as: LockTokenResult.self)
    }

    public func renew(_ grant: LockGrant, ttl: Duration? = nil, timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> LockTokenResult {
        try await self.renew(lock: grant.lock, token: grant.token, holderKey: grant.holderKey, ttl: ttl, timeout: timeout)
    }

    /// Ends the hold of `token`, proven by the `holderKey` its grant carried (refused with
    /// 403 without it).
    public func release(lock: String, token: Int64, holderKey: String?, timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> LockTokenResult {
        try await self.call(Coordinator.Method.lockRelease, LockTokenRequest(lock: lock, token: token, holderKey: holderKey), timeout: timeout, as: LockTokenResult.self)
    }

    public func release(_ grant: LockGrant, timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> LockTokenResult {
        try await self.release(lock: grant.lock, token: grant.token, holderKey: grant.holderKey, timeout: timeout)
    }

    /// An administrator's release without the holder's key: only the coordinator's trusted
    /// user may (403 for anyone else), and the coordinator audits it.
    public func forceRelease(lock: String, token: Int64, timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> LockTokenResult {
        try await self.call(Coordinator.Method.lockForceRelease, LockTokenRequest(lock: lock, token: token, holderKey: nil), timeout: timeout, as: LockTokenResult.self)
    }

    public func status(lock: String, timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> LockStatus {
        try await self.call(Coordinator.Method.lockStatus, ["lock": lock], timeout: timeout, as: LockStatus.self)
    }

    public func signal(_ request: SignalRequest, timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> EventState {
        try await self.call(Coordinator.Method.signal, request, timeout: timeout, as: EventState.self)
    }

    /// Waits for the event; a timeout is an answer with `satisfied: false`, not an error.
    public func wait(_ request: WaitRequest, slack: Duration = .seconds(5)) async throws(CoordinatorCallError) -> EventState {
        try await self.call(Coordinator.Method.wait, request, timeout: .milliseconds(request.timeoutMilliseconds) + slack, as: EventState.self)
    }
}
