import Foundation
import GRDB
import Mesh

// The coordinator's tables (migrations "v2-coordination", "v3-lock-holder-keys") and
// `CoordinationStore` on SQLite.
//
// Durability, and why tokens never repeat: a token range is reserved with
// `synchronous = FULL` (the WAL is fsynced before the reservation returns), and tokens are
// only issued from a reserved range; a restart starts after the whole range, so even a
// power cut cannot bring back a token that was handed out. Holders, renewals and signals
// are written at the store's own level, `synchronous = NORMAL` (GRDB's default in WAL
// mode: durable across a process crash, possibly not across a power cut), which keeps a
// grant well under a millisecond. After a power cut a lock may thus come back free; its
// old holder's token is still smaller than every token issued afterwards, so fenced
// resources stay safe. A release is answered before its row is deleted: the lock service
// keeps the removal and stores it in the same transaction as the next grant, or at its
// next tick (20 ms) when no grant comes, so a release costs no write of its own. A crash
// in between leaves a holder row that its lease or owner check removes after the restart.

enum CoordinationSchema {
    static let v2: [String] = [
        "CREATE TABLE coordination_token (id INTEGER PRIMARY KEY CHECK (id = 1), reserved_through INTEGER NOT NULL)",
        """
        CREATE TABLE lock_holder (
            lock_name TEXT NOT NULL,
            token INTEGER NOT NULL,
            lock_limit INTEGER NOT NULL,
            owner TEXT,
            holder TEXT NOT NULL,
            ttl_ms INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL,
            PRIMARY KEY (lock_name, token)
        )
        """,
        """
        CREATE TABLE event_signal (
            scope TEXT NOT NULL,
            event TEXT NOT NULL,
            node TEXT NOT NULL,
            data TEXT,
            signalled_at_ms INTEGER NOT NULL,
            PRIMARY KEY (scope, event, node)
        )
        """,
    ]

    /// Each holder's proof (the SHA-256 of the key its grant handed out, never the key) and
    /// who acquired it. Rows from before stay NULL: no key releases them (docs/primitives.md).
    static let v3: [String] = [
        "ALTER TABLE lock_holder ADD COLUMN key_hash TEXT",
        "ALTER TABLE lock_holder ADD COLUMN acquired_by TEXT",
    ]

    static func migrate(_ db: Database) throws {
        for statement in v2 { try db.execute(sql: statement) }
    }

    static func migrateHolderKeys(_ db: Database) throws {
        for statement in v3 { try db.execute(sql: statement) }
    }
}

extension SQLiteStateStore: CoordinationStore {
    public func loadCoordination() throws -> CoordinationSnapshot {
        try self.pool.read { db in
            let reserved = try Int64.fetchOne(db, sql: "SELECT reserved_through FROM coordination_token WHERE id = 1") ?? 0
            let holders = try Row.fetchAll(db, sql: "SELECT * FROM lock_holder ORDER BY token").map { row in
                let keyHash: String? = row["key_hash"]
                return LockHolderRecord(
                    lock: row["lock_name"], token: row["token"], limit: row["lock_limit"], owner: row["owner"], holder: row["holder"],
                    ttlMilliseconds: row["ttl_ms"], expiresAt: row["expires_at_ms"], keyHash: keyHash.flatMap(HolderKeyHash.init(stored:)),
                    acquiredBy: row["acquired_by"])
            }
            var signals: [EventKey: [EventSignal]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM event_signal ORDER BY signalled_at_ms, rowid") {
                let data: String? = row["data"]
                let value = data.flatMap { try? MeshValue(json: Array($0.utf8)) }
                signals[EventKey(scope: row["scope"], event: row["event"]), default: []].append(EventSignal(node: row["node"], data: value, at: row["signalled_at_ms"]))
            }
            return CoordinationSnapshot(reservedThrough: reserved, holders: holders, signals: signals)
        }
    }

    public func reserveTokens(through: Int64) throws {
        try self.pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
            try db.inTransaction(.immediate) {
                try db.execute(
                    sql: """
                        INSERT INTO coordination_token (id, reserved_through) VALUES (1, ?)
                        ON CONFLICT (id) DO UPDATE SET reserved_through = MAX(reserved_through, excluded.reserved_through)
                        """, arguments: [through])
                return .commit
            }
        }
    }

    public func saveLockHolder(_ holder: LockHolderRecord, removing removed: [LockHolderKey]) throws {
        // Statements prepared once per connection. Alone, the insert is one autocommit
        // statement (atomic by itself); with removals, all of it is one transaction.
        try self.pool.writeWithoutTransaction { db in
            let save = {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO lock_holder (lock_name, token, lock_limit, owner, holder, ttl_ms, expires_at_ms, key_hash, acquired_by)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (lock_name, token) DO UPDATE SET ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms
                        """
                ).execute(arguments: [
                    holder.lock, holder.token, holder.limit, holder.owner, holder.holder, holder.ttlMilliseconds, holder.expiresAt, holder.keyHash?.hex,
                    holder.acquiredBy,
                ])
            }
            if removed.isEmpty {
                try save()
            } else {
                try db.inTransaction(.immediate) {
                    try Self.delete(removed, db)
                    try save()
                    return .commit
                }
            }
        }
    }

    public func removeLockHolders(_ removed: [LockHolderKey]) throws {
        guard !removed.isEmpty else { return }
        try self.pool.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try Self.delete(removed, db)
                return .commit
            }
        }
    }

    /// The audit record (`lock.force_release`, by the AMQP user) and the row's deletion
    /// commit together: a forced release is never undone by a crash, nor done unrecorded.
    public func recordForcedRelease(_ holder: LockHolderRecord, by user: String, removing removed: [LockHolderKey]) throws {
        try self.pool.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try Self.delete(removed + [LockHolderKey(lock: holder.lock, token: holder.token)], db)
                var detail: [String: MeshValue] = [
                    "lock": .string(holder.lock), "token": .int(holder.token), "holder": .string(holder.holder),
                    "expires_at_ms": .int(holder.expiresAt),
                ]
                if let acquiredBy = holder.acquiredBy { detail["acquired_by"] = .string(acquiredBy) }
                if let owner = holder.owner { detail["owner"] = .string(owner) }
                try self.audit(db, .amqpUser(user), "lock.force_release", "coordinator-lock:\(holder.lock)", .succeeded, nil, nil, detail: .map(detail))
                return .commit
            }
        }
    }

    private static func delete(_ removed: [LockHolderKey], _ db: Database) throws {
        let statement = try db.cachedStatement(sql: "DELETE FROM lock_holder WHERE lock_name = ? AND token = ?")
        for key in removed { try statement.execute(arguments: [key.lock, key.token]) }
    }

    public func saveSignal(_ key: EventKey, _ signal: EventSignal) throws {
        let data = signal.data.map { String(decoding: $0.jsonBytes, as: UTF8.self) }
        try self.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO event_signal (scope, event, node, data, signalled_at_ms) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (scope, event, node) DO UPDATE SET data = excluded.data, signalled_at_ms = excluded.signalled_at_ms
                    """, arguments: [key.scope, key.event, signal.node, data, signal.at])
        }
    }

    /// The instance ids of the deployment named `scope` (its active generation, any
    /// environment): what `conductor wait` names when they have not signalled.
    public func expectedNodes(scope: String) throws -> [String]? {
        let ids = try self.pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT instance.id FROM instance
                    JOIN generation ON generation.id = instance.generation_id
                    JOIN deployment ON deployment.id = generation.deployment_id
                    WHERE deployment.name = ? AND generation.status = 'active' ORDER BY instance.member
                    """, arguments: [scope])
        }
        return ids.isEmpty ? nil : ids.map { $0.lowercased() }
    }
}
