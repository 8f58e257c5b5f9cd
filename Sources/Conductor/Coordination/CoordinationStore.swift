import Foundation
import Mesh
import Synchronization

/// What can go wrong running the coordinator, with a stable code.
public struct CoordinationError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
        public static let invalidScope = Code("invalid-scope")
        public static let alreadyRunning = Code("already-running")
        public static let store = Code("store")
        public static let stopped = Code("stopped")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}

/// Wall-clock milliseconds since 1970. Leases are wall-clock deadlines so they keep their
/// meaning across a coordinator restart; tests inject a manual clock.
public struct CoordinationClock: Sendable {
    public var now: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64) { self.now = now }

    public static let system = CoordinationClock { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}

/// One lock holder as stored.
public struct LockHolderRecord: Hashable, Sendable {
    public var lock: String
    public var token: Int64
    public var limit: Int
    /// The owner's queue (its connection's liveness), nil for a lease-only holder.
    public var owner: String?
    public var holder: String
    public var ttlMilliseconds: Int64
    public var expiresAt: Int64
    /// The hash of the key its grant handed out: renewing or releasing must show the key.
    /// Nil for a holder stored before keys existed, which only its lease, its owner's
    /// connection or a forced release can end.
    public var keyHash: HolderKeyHash?
    /// The broker-validated AMQP user whose request acquired it (nil when it carried none).
    public var acquiredBy: String?

    public init(
        lock: String, token: Int64, limit: Int, owner: String?, holder: String, ttlMilliseconds: Int64, expiresAt: Int64,
        keyHash: HolderKeyHash?, acquiredBy: String? = nil
    ) {
        self.lock = lock
        self.token = token
        self.limit = limit
        self.owner = owner
        self.holder = holder
        self.ttlMilliseconds = ttlMilliseconds
        self.expiresAt = expiresAt
        self.keyHash = keyHash
        self.acquiredBy = acquiredBy
    }
}

/// Names one holder's record: its lock and token.
public struct LockHolderKey: Hashable, Sendable {
    public var lock: String
    public var token: Int64
    public init(lock: String, token: Int64) {
        self.lock = lock
        self.token = token
    }
}

/// Everything the coordinator reloads on start.
public struct CoordinationSnapshot: Sendable {
    /// Every token up to this one may have been issued: the next token is larger.
    public var reservedThrough: Int64
    public var holders: [LockHolderRecord]
    /// Signals by scope, event, in the order they came.
    public var signals: [EventKey: [EventSignal]]

    public init(reservedThrough: Int64 = 0, holders: [LockHolderRecord] = [], signals: [EventKey: [EventSignal]] = [:]) {
        self.reservedThrough = reservedThrough
        self.holders = holders
        self.signals = signals
    }
}

public struct EventKey: Hashable, Sendable {
    public var scope: String
    public var event: String
    public init(scope: String, event: String) {
        self.scope = scope
        self.event = event
    }
}

/// Where the coordinator keeps locks, fencing tokens and events. `SQLiteStateStore` and
/// `PostgresStateStore` implement it (docs/primitives.md says why it is safe).
///
/// The calls are `async` so that a store on the network (PostgreSQL) does not block a
/// thread; a synchronous implementation (SQLite, memory) satisfies them as it is. The lock
/// and event services call them one at a time, in the order of their decisions
/// (`SerialGate`), and answer a grant only after its call returned: the order of writes is
/// the order of decisions whatever the store. Each is one short transaction.
public protocol CoordinationStore: Sendable {
    func loadCoordination() async throws -> CoordinationSnapshot
    /// Durably records that tokens up to `through` may be issued (must survive power loss).
    func reserveTokens(through: Int64) async throws
    /// Deletes the `removed` holders, then inserts or updates (renewed lease) `holder`, in one
    /// transaction: the lock service hands over the removals it has not stored yet.
    func saveLockHolder(_ holder: LockHolderRecord, removing removed: [LockHolderKey]) async throws
    /// Deletes holders. The lock service calls it late on purpose (with the next grant, or
    /// at its next tick): a leftover row after a crash only holds the lock until its lease
    /// or owner check ends it.
    func removeLockHolders(_ removed: [LockHolderKey]) async throws
    /// An administrator forced `holder` out: deletes its row (and the `removed` ones) and
    /// appends the audit record naming `user`, in one transaction, before the lock service
    /// lets the holder go. Unlike a release it is never stored late.
    func recordForcedRelease(_ holder: LockHolderRecord, by user: String, removing removed: [LockHolderKey]) async throws
    func saveSignal(_ key: EventKey, _ signal: EventSignal) async throws
    /// The nodes expected to signal in a scope (a deployment's instances), nil when unknown.
    func expectedNodes(scope: String) async throws -> [String]?
}

/// A store the coordinator runs on: the launches' records and the locks' and events'.
public typealias CoordinatorStateStore = StateStore & CoordinationStore

/// A first-in first-out gate for an actor's effects: an event method enters, decides, awaits
/// its store calls, and leaves; the next event enters only then. An actor alone would let
/// another event run while one awaits its store (reentrancy), and writes could land out of
/// the order of the decisions.
struct SerialGate {
    private var busy = false
    private var queue: [CheckedContinuation<Void, Never>] = []

    /// Whether the caller may enter at once; otherwise `wait` appends it to the queue.
    mutating func tryEnter() -> Bool {
        if self.busy { return false }
        self.busy = true
        return true
    }

    mutating func wait(_ continuation: CheckedContinuation<Void, Never>) {
        self.queue.append(continuation)
    }

    /// Hands the gate to the next in line (it stays busy), or frees it.
    mutating func leave() -> CheckedContinuation<Void, Never>? {
        if self.queue.isEmpty {
            self.busy = false
            return nil
        }
        return self.queue.removeFirst()
    }
}

/// Keeps everything in memory: for tests and coordinators without a state file.
public final class InMemoryCoordinationStore: CoordinationStore {
    /// A forced release as this store remembers it (in place of an audit trail).
    public struct ForcedRelease: Hashable, Sendable {
        public var holder: LockHolderRecord
        public var user: String
    }

    private let state = Mutex(CoordinationSnapshot())
    private let forced = Mutex<[ForcedRelease]>([])
    private let expected: [String: [String]]

    public init(expectedNodes: [String: [String]] = [:]) {
        self.expected = expectedNodes
    }

    public func loadCoordination() throws -> CoordinationSnapshot { self.state.withLock { $0 } }

    public func reserveTokens(through: Int64) throws {
        self.state.withLock { $0.reservedThrough = max($0.reservedThrough, through) }
    }

    public func saveLockHolder(_ holder: LockHolderRecord, removing removed: [LockHolderKey]) throws {
        self.state.withLock { state in
            state.holders.removeAll { removed.contains(LockHolderKey(lock: $0.lock, token: $0.token)) }
            state.holders.removeAll { $0.lock == holder.lock && $0.token == holder.token }
            state.holders.append(holder)
        }
    }

    public func removeLockHolders(_ removed: [LockHolderKey]) throws {
        self.state.withLock { $0.holders.removeAll { removed.contains(LockHolderKey(lock: $0.lock, token: $0.token)) } }
    }

    public func recordForcedRelease(_ holder: LockHolderRecord, by user: String, removing removed: [LockHolderKey]) throws {
        let keys = removed + [LockHolderKey(lock: holder.lock, token: holder.token)]
        self.state.withLock { $0.holders.removeAll { keys.contains(LockHolderKey(lock: $0.lock, token: $0.token)) } }
        self.forced.withLock { $0.append(ForcedRelease(holder: holder, user: user)) }
    }

    /// Every forced release so far, oldest first.
    public var forcedReleases: [ForcedRelease] { self.forced.withLock { $0 } }

    public func saveSignal(_ key: EventKey, _ signal: EventSignal) throws {
        self.state.withLock { state in
            var signals = state.signals[key] ?? []
            if let index = signals.firstIndex(where: { $0.node == signal.node }) {
                signals[index] = signal
            } else {
                signals.append(signal)
            }
            state.signals[key] = signals
        }
    }

    public func expectedNodes(scope: String) throws -> [String]? { self.expected[scope] }
}
