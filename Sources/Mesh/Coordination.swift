/// The coordinator's side of the bus (docs/protocol.md, "Coordinator"): its agent name,
/// its methods and their argument and result bodies. Locks, signal/wait and `launch`
/// are `_method_request`s to `conductor:coordinator:<scope>` on `qmf.default.direct`.
public enum Coordinator {
    public static let product = "coordinator"
    public static let defaultScope = "default"

    /// `conductor:coordinator:<scope>`: the routing key the coordinator consumes on
    /// `qmf.default.direct`.
    public static func name(scope: String = Coordinator.defaultScope) throws(MeshError) -> AgentName {
        try AgentName(vendor: AgentName.conductorVendor, product: Self.product, instance: scope)
    }

    /// The coordinator's request queue: exclusive to the running coordinator, so a second
    /// one for the same scope is refused (405) instead of sharing the locks.
    public static func queue(scope: String) -> String { "conductor.coordinator.\(scope)" }

    /// Method names (`_method_name`).
    public enum Method {
        public static let lockAcquire = "lock_acquire"
        public static let lockRenew = "lock_renew"
        public static let lockRelease = "lock_release"
        /// An administrator's release of someone else's hold: only the coordinator's
        /// trusted user may call it, and each one is audited.
        public static let lockForceRelease = "lock_force_release"
        public static let lockStatus = "lock_status"
        public static let signal = "signal"
        public static let wait = "wait"
    }
}

extension ExceptionCode {
    /// The request conflicts with the current state (a lock's limit differs from the
    /// limit it is held with).
    public static let conflict = ExceptionCode(rawValue: 409)
    /// What the request names is no longer there (a lock that is not held with that token).
    public static let gone = ExceptionCode(rawValue: 410)
}

// MARK: - Locks

/// `lock_acquire` arguments. `owner` is a queue that only lives as long as the holder's
/// connection (its exclusive reply queue): the coordinator releases the lock when that
/// queue is gone. Without `owner` the lock is held by its lease alone (the two-step
/// `conductor lock acquire` form).
public struct LockAcquireRequest: Hashable, Sendable, Codable {
    public var lock: String
    public var limit: Int
    public var ttlMilliseconds: Int64
    public var waitMilliseconds: Int64
    public var owner: String?
    /// Who holds it, for people reading errors and status (agent, host, pid).
    public var holder: String

    public init(lock: String, limit: Int = 1, ttlMilliseconds: Int64, waitMilliseconds: Int64, owner: String?, holder: String) {
        self.lock = lock
        self.limit = limit
        self.ttlMilliseconds = ttlMilliseconds
        self.waitMilliseconds = waitMilliseconds
        self.owner = owner
        self.holder = holder
    }

    /// The rules every acquire must meet; the error says which one is broken.
    public func validate() throws(MeshError) {
        try LockNames.validate(self.lock)
        guard (1...10_000).contains(self.limit) else { throw MeshError(.invalidArguments, "limit must be 1...10000, not \(self.limit)") }
        guard (100...86_400_000).contains(self.ttlMilliseconds) else {
            throw MeshError(.invalidArguments, "ttl must be between 0.1 s and 24 h, not \(self.ttlMilliseconds) ms")
        }
        guard (0...86_400_000).contains(self.waitMilliseconds) else {
            throw MeshError(.invalidArguments, "wait must be between 0 and 24 h, not \(self.waitMilliseconds) ms")
        }
        guard !self.holder.isEmpty, self.holder.utf8.count <= 256 else { throw MeshError(.invalidArguments, "holder must be 1-256 bytes") }
    }

    enum CodingKeys: String, CodingKey {
        case lock, limit, owner, holder
        case ttlMilliseconds = "ttl_ms"
        case waitMilliseconds = "wait_ms"
    }

    /// `limit` defaults to 1 and `wait_ms` to 0; `lock`, `ttl_ms` and `holder` are required.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.lock = try container.decode(String.self, forKey: .lock)
        self.limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? 1
        self.ttlMilliseconds = try container.decode(Int64.self, forKey: .ttlMilliseconds)
        self.waitMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .waitMilliseconds) ?? 0
        self.owner = try container.decodeIfPresent(String.self, forKey: .owner)
        self.holder = try container.decode(String.self, forKey: .holder)
    }
}

/// `lock_acquire` result: the fencing token (only ever increases, never issued twice),
/// how long the lease runs from the coordinator's grant, and the holder's secret.
public struct LockGrant: Hashable, Sendable, Codable {
    public var lock: String
    public var token: Int64
    public var leaseMilliseconds: Int64
    public var limit: Int
    /// Proof of holding, handed to this holder only: `lock_renew` and `lock_release` must
    /// carry it (the token alone is public: `lock_status` shows it). Nil only from a
    /// coordinator older than holder keys.
    public var holderKey: String?

    public init(lock: String, token: Int64, leaseMilliseconds: Int64, limit: Int, holderKey: String?) {
        self.lock = lock
        self.token = token
        self.leaseMilliseconds = leaseMilliseconds
        self.limit = limit
        self.holderKey = holderKey
    }

    enum CodingKeys: String, CodingKey {
        case lock, token, limit
        case leaseMilliseconds = "lease_ms"
        case holderKey = "holder_key"
    }
}

/// `lock_renew` (with `ttl_ms`), `lock_release` (without) and `lock_force_release`
/// (without either key or ttl) arguments.
public struct LockTokenRequest: Hashable, Sendable, Codable {
    public var lock: String
    public var token: Int64
    /// The `holder_key` of the grant: a renewal or release without the right one is refused
    /// (403) while the token holds the lock.
    public var holderKey: String?
    public var ttlMilliseconds: Int64?

    public init(lock: String, token: Int64, holderKey: String?, ttlMilliseconds: Int64? = nil) {
        self.lock = lock
        self.token = token
        self.holderKey = holderKey
        self.ttlMilliseconds = ttlMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case lock, token
        case holderKey = "holder_key"
        case ttlMilliseconds = "ttl_ms"
    }
}

/// `lock_renew` / `lock_release` result.
public struct LockTokenResult: Hashable, Sendable, Codable {
    public var lock: String
    public var token: Int64
    /// The new lease (renew); 0 after a release.
    public var leaseMilliseconds: Int64
    /// False when the token no longer held the lock (lease ran out, owner gone, released).
    public var held: Bool

    public init(lock: String, token: Int64, leaseMilliseconds: Int64, held: Bool) {
        self.lock = lock
        self.token = token
        self.leaseMilliseconds = leaseMilliseconds
        self.held = held
    }

    enum CodingKeys: String, CodingKey {
        case lock, token, held
        case leaseMilliseconds = "lease_ms"
    }
}

/// One holder as `lock_status` and timeouts report it (never its key).
public struct LockHolderInfo: Hashable, Sendable, Codable {
    public var token: Int64
    public var holder: String
    /// The broker-validated AMQP user that acquired it (nil when its request carried no
    /// `user_id`, or it was acquired before the coordinator recorded it).
    public var acquiredBy: String?
    public var leaseRemainingMilliseconds: Int64

    public init(token: Int64, holder: String, acquiredBy: String? = nil, leaseRemainingMilliseconds: Int64) {
        self.token = token
        self.holder = holder
        self.acquiredBy = acquiredBy
        self.leaseRemainingMilliseconds = leaseRemainingMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case token, holder
        case acquiredBy = "acquired_by"
        case leaseRemainingMilliseconds = "lease_remaining_ms"
    }
}

/// `lock_status` arguments are `{"lock": NAME}`; this is its result.
public struct LockStatus: Hashable, Sendable, Codable {
    public var lock: String
    public var limit: Int
    public var holders: [LockHolderInfo]
    public var waiters: Int

    public init(lock: String, limit: Int, holders: [LockHolderInfo], waiters: Int) {
        self.lock = lock
        self.limit = limit
        self.holders = holders
        self.waiters = waiters
    }
}

public enum LockNames {
    /// Lock and event names: 1-200 bytes of letters, digits and `-_.:/@`.
    public static func validate(_ name: String, what: String = "lock name") throws(MeshError) {
        guard !name.isEmpty, name.utf8.count <= 200 else { throw MeshError(.invalidArguments, "\(what) must be 1-200 bytes") }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", ":", "/", "@": return true
            default: return false
            }
        }
        guard allowed else { throw MeshError(.invalidArguments, "\(what) '\(name)' may only hold letters, digits and - _ . : / @") }
    }
}

// MARK: - Signal / wait

/// `signal` arguments. `scope` is a deployment name, or `global`.
public struct SignalRequest: Hashable, Sendable, Codable {
    public var event: String
    public var scope: String
    /// The signalling node (agent instance id or host name); a barrier counts distinct nodes.
    public var node: String
    public var data: MeshValue?

    public init(event: String, scope: String, node: String, data: MeshValue? = nil) {
        self.event = event
        self.scope = scope
        self.node = node
        self.data = data
    }

    public func validate() throws(MeshError) {
        try LockNames.validate(self.event, what: "event name")
        try LockNames.validate(self.scope, what: "event scope")
        guard !self.node.isEmpty, self.node.utf8.count <= 256 else { throw MeshError(.invalidArguments, "node must be 1-256 bytes") }
        if let data, data.jsonBytes.count > 64 * 1024 { throw MeshError(.invalidArguments, "event data is larger than 64 KiB") }
    }
}

/// `wait` arguments: answered once `count` distinct nodes signalled the event (at once
/// when they already had: events are latched), or at `timeout_ms` with `satisfied: false`.
public struct WaitRequest: Hashable, Sendable, Codable {
    public var event: String
    public var scope: String
    public var count: Int
    public var timeoutMilliseconds: Int64

    public init(event: String, scope: String, count: Int = 1, timeoutMilliseconds: Int64) {
        self.event = event
        self.scope = scope
        self.count = count
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public func validate() throws(MeshError) {
        try LockNames.validate(self.event, what: "event name")
        try LockNames.validate(self.scope, what: "event scope")
        guard (1...100_000).contains(self.count) else { throw MeshError(.invalidArguments, "count must be 1...100000, not \(self.count)") }
        guard (0...86_400_000).contains(self.timeoutMilliseconds) else {
            throw MeshError(.invalidArguments, "timeout must be between 0 and 24 h, not \(self.timeoutMilliseconds) ms")
        }
    }

    enum CodingKeys: String, CodingKey {
        case event, scope, count
        case timeoutMilliseconds = "timeout_ms"
    }
}

/// One node's signal of an event.
public struct EventSignal: Hashable, Sendable, Codable {
    public var node: String
    public var data: MeshValue?
    /// Milliseconds since 1970 when the coordinator recorded it.
    public var at: Int64

    public init(node: String, data: MeshValue?, at: Int64) {
        self.node = node
        self.data = data
        self.at = at
    }
}

/// `signal` and `wait` result: who signalled (in order), and for a wait whether the count
/// was reached and, when the coordinator knows the expected nodes, who has not signalled.
public struct EventState: Hashable, Sendable, Codable {
    public var event: String
    public var scope: String
    public var signals: [EventSignal]
    public var satisfied: Bool
    /// Nodes expected and not yet signalled (the deployment's members), when known.
    public var missing: [String]?

    public init(event: String, scope: String, signals: [EventSignal], satisfied: Bool, missing: [String]? = nil) {
        self.event = event
        self.scope = scope
        self.signals = signals
        self.satisfied = satisfied
        self.missing = missing
    }
}
