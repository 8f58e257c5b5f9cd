import Foundation
import Mesh
import PostgresNIO

// `CoordinationStore` on PostgreSQL: the lock holders, the fencing-token reservation and the
// latched signals, in the tables of the same names. Each call is one `write` transaction,
// committed before it returns: a grant is answered only once its holder row is committed
// (the lock service awaits the call). The durability split is SQLite's: a token reservation
// waits for the WAL flush (as `synchronous = FULL`), so it survives a power cut; holders,
// removals and signals do not wait for it (`synchronous_commit = off`, as `synchronous =
// NORMAL`): a server crash may bring a lock back free, whose holder's token is still below
// every later one (docs/primitives.md). A forced release waits: it carries its audit record.

extension PostgresStateStore: CoordinationStore {
    public func loadCoordination() async throws -> CoordinationSnapshot {
        try await self.read { session in
            let reserved = try await session.first("SELECT reserved_through FROM coordination_token WHERE id = 1")?["reserved_through"].decode(Int64.self) ?? 0
            let holders = try await session.rows("SELECT * FROM lock_holder ORDER BY token").map { row in
                LockHolderRecord(
                    lock: try row["lock_name"].decode(String.self), token: try row["token"].decode(Int64.self), limit: try row["lock_limit"].decode(Int.self),
                    owner: try row["owner"].decode(String?.self), holder: try row["holder"].decode(String.self),
                    ttlMilliseconds: try row["ttl_ms"].decode(Int64.self), expiresAt: try row["expires_at_ms"].decode(Int64.self),
                    keyHash: try row["key_hash"].decode(String?.self).flatMap(HolderKeyHash.init(stored:)),
                    acquiredBy: try row["acquired_by"].decode(String?.self))
            }
            var signals: [EventKey: [EventSignal]] = [:]
            for row in try await session.rows("SELECT scope, event, node, data::text AS data, signalled_at_ms FROM event_signal ORDER BY signalled_at_ms, seq") {
                let value = try row["data"].decode(String?.self).flatMap { try? MeshValue(json: Array($0.utf8)) }
                let key = EventKey(scope: try row["scope"].decode(String.self), event: try row["event"].decode(String.self))
                signals[key, default: []].append(
                    EventSignal(node: try row["node"].decode(String.self), data: value, at: try row["signalled_at_ms"].decode(Int64.self)))
            }
            return CoordinationSnapshot(reservedThrough: reserved, holders: holders, signals: signals)
        }
    }

    public func reserveTokens(through: Int64) async throws {
        try await self.write { session in
            try await session.execute(
                """
                INSERT INTO coordination_token (id, reserved_through) VALUES (1, \(through))
                ON CONFLICT (id) DO UPDATE SET reserved_through = GREATEST(coordination_token.reserved_through, excluded.reserved_through)
                """)
        }
    }

    public func saveLockHolder(_ holder: LockHolderRecord, removing removed: [LockHolderKey]) async throws {
        try await self.write(flushed: false) { session in
            try await Self.delete(removed, session)
            try await session.execute(
                """
                INSERT INTO lock_holder (lock_name, token, lock_limit, owner, holder, ttl_ms, expires_at_ms, key_hash, acquired_by)
                VALUES (\(holder.lock), \(holder.token), \(holder.limit), \(holder.owner), \(holder.holder), \(holder.ttlMilliseconds),
                    \(holder.expiresAt), \(holder.keyHash?.hex), \(holder.acquiredBy))
                ON CONFLICT (lock_name, token) DO UPDATE SET ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms
                """)
        }
    }

    public func removeLockHolders(_ removed: [LockHolderKey]) async throws {
        guard !removed.isEmpty else { return }
        try await self.write(flushed: false) { session in try await Self.delete(removed, session) }
    }

    /// The audit record and the row's deletion commit together, as in SQLite.
    public func recordForcedRelease(_ holder: LockHolderRecord, by user: String, removing removed: [LockHolderKey]) async throws {
        try await self.write { session in
            try await Self.delete(removed + [LockHolderKey(lock: holder.lock, token: holder.token)], session)
            var detail: [String: MeshValue] = [
                "lock": .string(holder.lock), "token": .int(holder.token), "holder": .string(holder.holder), "expires_at_ms": .int(holder.expiresAt),
            ]
            if let acquiredBy = holder.acquiredBy { detail["acquired_by"] = .string(acquiredBy) }
            if let owner = holder.owner { detail["owner"] = .string(owner) }
            try await self.audit(session, .amqpUser(user), "lock.force_release", "coordinator-lock:\(holder.lock)", .succeeded, nil, nil, detail: .map(detail))
        }
    }

    private static func delete(_ removed: [LockHolderKey], _ session: PostgresSession) async throws {
        guard !removed.isEmpty else { return }
        let names = removed.map(\.lock)
        let tokens = removed.map(\.token)
        try await session.execute(
            """
            DELETE FROM lock_holder WHERE (lock_name, token) IN (
                SELECT * FROM unnest(\(names)::text[], \(tokens)::bigint[]))
            """)
    }

    public func saveSignal(_ key: EventKey, _ signal: EventSignal) async throws {
        let data = signal.data.map { String(decoding: $0.jsonBytes, as: UTF8.self) }
        try await self.write(flushed: false) { session in
            try await session.execute(
                """
                INSERT INTO event_signal (scope, event, node, data, signalled_at_ms) VALUES (\(key.scope), \(key.event), \(signal.node), \(data)::jsonb, \(signal.at))
                ON CONFLICT (scope, event, node) DO UPDATE SET data = excluded.data, signalled_at_ms = excluded.signalled_at_ms
                """)
        }
    }

    public func expectedNodes(scope: String) async throws -> [String]? {
        let ids = try await self.read { session in
            try await session.rows(
                """
                SELECT instance.id FROM instance
                JOIN generation ON generation.id = instance.generation_id
                JOIN deployment ON deployment.id = generation.deployment_id
                WHERE deployment.name = \(scope) AND generation.status = 'active' ORDER BY instance.member
                """
            ).map { try $0["id"].decode(UUID.self).uuidString.lowercased() }
        }
        return ids.isEmpty ? nil : ids
    }
}
