import Foundation
import Logging
import PostgresNIO
import Synchronization

// Standby coordinators: several `conductor serve` on one PostgreSQL state, one of them
// active. Leadership is the lease row of the coordinator scope in `coordinator_leader`; its
// epoch grows by one at every change of holder and is the fencing token of every write of
// the active coordinator (`LeaderFence`), so a paused or partitioned old leader cannot write
// once a new one took over (ARCHITECTURE.md decision 10, docs/state.md "Standby
// coordinators"). Expiry is judged by the server's clock, never a coordinator's.

/// Who holds the leadership of a coordinator scope, and until when (the server's clock).
public struct LeaderLease: Sendable, Hashable, Codable {
    public var scope: String
    /// The fencing token: grows by one at every change of holder, never goes back.
    public var epoch: Int64
    /// The coordinator process (`CoordinatorIdentity.id`).
    public var holder: String
    public var host: String
    public var pid: Int32
    /// When this holder became active.
    public var since: Date
    public var expiresAt: Date
}

/// A coordinator process taking part in the election, active or standing by.
public struct CoordinatorIdentity: Sendable, Hashable, Codable {
    /// Unique per process: host, pid and a random part (pids are reused).
    public var id: String
    public var host: String
    public var pid: Int32

    public init(host: String = ProcessInfo.processInfo.hostName, pid: Int32 = getpid()) {
        self.host = host
        self.pid = pid
        self.id = "\(host):\(pid):\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// What `conductor status` shows of the coordinators of a scope.
public struct CoordinatorRoster: Sendable, Hashable, Codable {
    public struct Member: Sendable, Hashable, Codable {
        public var holder: String
        public var host: String
        public var pid: Int32
        public var startedAt: Date
        /// Its last campaign or renewal.
        public var seenAt: Date
        public var active: Bool
    }

    public var scope: String
    /// The lease as it stands (it may have lapsed: `leaseLapsed`).
    public var leader: LeaderLease?
    public var leaseLapsed: Bool
    /// Every coordinator seen within the retention given, the active one first.
    public var members: [Member]
}

/// The fence of an active coordinator's store: every write transaction reads the lease row
/// `FOR SHARE` (a takeover's update waits for writes in flight, and writes after it see the
/// new epoch) and refuses unless the epoch is the one this coordinator was granted. With no
/// epoch (standing by, or after losing the lease) every write is refused.
public final class LeaderFence: PostgresWriteFence {
    public let scope: String
    private let epoch = Mutex<Int64?>(nil)

    public init(scope: String) { self.scope = scope }

    /// The epoch writes must carry; nil refuses every write.
    public var current: Int64? { self.epoch.withLock { $0 } }
    public func hold(_ epoch: Int64?) { self.epoch.withLock { $0 = epoch } }

    public func check(_ connection: PostgresConnection, logger: Logger) async throws {
        guard let mine = self.current else {
            throw StateStoreError(.fenced, "this coordinator of scope '\(self.scope)' is standing by: only the active coordinator writes")
        }
        let rows = try await connection.query(
            "SELECT epoch FROM coordinator_leader WHERE scope = \(self.scope) FOR SHARE", logger: logger
        ).collect()
        let epoch = try rows.first.map { try $0.makeRandomAccess()["epoch"].decode(Int64.self) }
        guard epoch == mine else {
            throw StateStoreError(
                .fenced,
                "this coordinator's leadership of scope '\(self.scope)' (epoch \(mine)) was taken over (epoch \(epoch.map(String.init) ?? "none")): it writes nothing more")
        }
    }
}

extension PostgresStateStore {
    /// One round of the election: renews the lease if `me` holds it, takes it (epoch + 1) if
    /// it lapsed or was resigned, else returns the lease of the active one. Also records that
    /// `me` takes part. Not fenced: a standby campaigns.
    public func campaign(scope: String, as me: CoordinatorIdentity, lease: Duration) async throws -> (lease: LeaderLease, mine: Bool) {
        let milliseconds = Self.milliseconds(lease)
        return try await self.write(fenced: false) { session in
            try await session.execute(
                """
                INSERT INTO coordinator_member (scope, holder, host, pid, started_at, seen_at)
                VALUES (\(scope), \(me.id), \(me.host), \(me.pid), clock_timestamp(), clock_timestamp())
                ON CONFLICT (scope, holder) DO UPDATE SET seen_at = excluded.seen_at
                """)
            try await session.execute(
                """
                INSERT INTO coordinator_leader (scope, epoch, holder, host, pid, since, renewed_at, expires_at)
                VALUES (\(scope), 0, '', '', 0, clock_timestamp(), clock_timestamp(), to_timestamp(0))
                ON CONFLICT (scope) DO NOTHING
                """)
            guard let row = try await session.first(
                "SELECT *, expires_at <= clock_timestamp() AS lapsed FROM coordinator_leader WHERE scope = \(scope) FOR UPDATE")
            else { throw StateStoreError(.schema, "no leadership row for scope '\(scope)'") }
            let current = try Self.leaderLease(row)
            let lapsed = try row["lapsed"].decode(Bool.self)
            if current.holder == me.id, !lapsed {
                let renewed = try await session.first(
                    """
                    UPDATE coordinator_leader SET renewed_at = clock_timestamp(),
                        expires_at = clock_timestamp() + \(milliseconds)::bigint * interval '1 millisecond'
                    WHERE scope = \(scope) RETURNING *
                    """)
                return (try Self.leaderLease(renewed), true)
            }
            guard lapsed else { return (current, false) }
            let taken = try await session.first(
                """
                UPDATE coordinator_leader SET epoch = epoch + 1, holder = \(me.id), host = \(me.host), pid = \(me.pid),
                    since = clock_timestamp(), renewed_at = clock_timestamp(),
                    expires_at = clock_timestamp() + \(milliseconds)::bigint * interval '1 millisecond'
                WHERE scope = \(scope) RETURNING *
                """)
            return (try Self.leaderLease(taken), true)
        }
    }

    /// Extends the lease `held`; nil when it is no longer ours (another coordinator took over
    /// after it lapsed): the caller must stop acting as active at once. A lease that lapsed
    /// with nobody taking over is still ours: the epoch did not move, so nobody else wrote.
    public func renewLeadership(_ held: LeaderLease, for lease: Duration) async throws -> LeaderLease? {
        let milliseconds = Self.milliseconds(lease)
        return try await self.write(fenced: false) { session in
            try await session.execute(
                "UPDATE coordinator_member SET seen_at = clock_timestamp() WHERE scope = \(held.scope) AND holder = \(held.holder)")
            return try await session.first(
                """
                UPDATE coordinator_leader SET renewed_at = clock_timestamp(),
                    expires_at = clock_timestamp() + \(milliseconds)::bigint * interval '1 millisecond'
                WHERE scope = \(held.scope) AND epoch = \(held.epoch) AND holder = \(held.holder)
                RETURNING *
                """
            ).map(Self.leaderLease)
        }
    }

    /// Gives the lease up at once (SIGTERM): a standby takes over at its next campaign
    /// rather than when the lease would have lapsed. The epoch stays, so the next holder's
    /// is still higher. Leaves the roster too.
    public func resignLeadership(_ held: LeaderLease) async throws {
        try await self.write(fenced: false) { session in
            try await session.execute(
                "UPDATE coordinator_leader SET expires_at = to_timestamp(0) WHERE scope = \(held.scope) AND epoch = \(held.epoch) AND holder = \(held.holder)")
            try await session.execute("DELETE FROM coordinator_member WHERE scope = \(held.scope) AND holder = \(held.holder)")
        }
    }

    /// A standby that stops leaves the roster.
    public func leaveRoster(scope: String, as me: CoordinatorIdentity) async throws {
        try await self.write(fenced: false) { session in
            try await session.execute("DELETE FROM coordinator_member WHERE scope = \(scope) AND holder = \(me.id)")
        }
    }

    /// The lease and the coordinators seen within `recent` (a killed one drops out after it).
    public func roster(scope: String, recent: Duration = .seconds(60)) async throws -> CoordinatorRoster {
        let milliseconds = Self.milliseconds(recent)
        return try await self.read { session in
            let leaderRow = try await session.first(
                "SELECT *, expires_at <= clock_timestamp() AS lapsed FROM coordinator_leader WHERE scope = \(scope)")
            let leader = try leaderRow.map(Self.leaderLease).flatMap { $0.holder.isEmpty ? nil : $0 }
            let lapsed = try leaderRow?["lapsed"].decode(Bool.self) ?? true
            let members = try await session.rows(
                """
                SELECT * FROM coordinator_member WHERE scope = \(scope)
                    AND seen_at > clock_timestamp() - \(milliseconds)::bigint * interval '1 millisecond'
                ORDER BY started_at
                """
            ).map { row in
                let holder = try row["holder"].decode(String.self)
                return CoordinatorRoster.Member(
                    holder: holder, host: try row["host"].decode(String.self), pid: try row["pid"].decode(Int32.self),
                    startedAt: try row["started_at"].decode(Date.self), seenAt: try row["seen_at"].decode(Date.self),
                    active: !lapsed && holder == leader?.holder)
            }
            return CoordinatorRoster(
                scope: scope, leader: leader, leaseLapsed: lapsed,
                members: members.filter(\.active) + members.filter { !$0.active })
        }
    }

    static func leaderLease(_ row: PostgresRandomAccessRow?) throws -> LeaderLease {
        guard let row else { throw StateStoreError(.schema, "no leadership row") }
        return LeaderLease(
            scope: try row["scope"].decode(String.self), epoch: try row["epoch"].decode(Int64.self),
            holder: try row["holder"].decode(String.self), host: try row["host"].decode(String.self), pid: try row["pid"].decode(Int32.self),
            since: try row["since"].decode(Date.self), expiresAt: try row["expires_at"].decode(Date.self))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
