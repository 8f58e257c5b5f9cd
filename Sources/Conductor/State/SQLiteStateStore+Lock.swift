import Foundation
import GRDB

// The launch lock: one row per (deployment, environment), taken in a BEGIN IMMEDIATE
// transaction so two processes cannot both see it free. A lease ends at `expires_at`;
// a holder whose process is gone from this host loses it at once.

/// Why a lock held by someone else may be taken anyway; nil when it may not.
func launchLockStealReason(
    _ current: LaunchLease, now: Date, hostName: String, isProcessAlive: (Int32) -> Bool
) -> String? {
    if current.expiresAt <= now { return "lease expired" }
    if current.host == hostName && !isProcessAlive(current.pid) { return "holder process \(current.pid) is gone" }
    return nil
}

extension SQLiteStateStore {
    public func acquireLaunchLock(
        deployment: String, environment: String, holder: LockHolder, lease: Duration, actor: AuditActor
    ) async throws -> LaunchLease {
        try await write { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM launch_lock WHERE deployment = ? AND environment = ?",
                arguments: [deployment, environment])
            let now = self.now
            var stolenFrom: (LaunchLease, String)?
            if let row, let current = Self.lease(row), current.holderID != holder.id {
                guard let reason = launchLockStealReason(
                    current, now: now, hostName: self.options.hostName, isProcessAlive: self.options.isProcessAlive)
                else {
                    throw StateStoreError(
                        .lockHeld,
                        "\(deployment)@\(environment) is being launched by holder \(current.holderID) (pid \(current.pid) on \(current.host)) until \(current.expiresAt); retry later, or wait for the lease to expire",
                        holder: current)
                }
                stolenFrom = (current, reason)
            }
            let token: Int64 = (row?["fencing_token"] ?? 0) + 1
            let granted = LaunchLease(
                deployment: deployment, environment: environment, holderID: holder.id, host: holder.host,
                pid: holder.pid, fencingToken: token, acquiredAt: now, expiresAt: now.addingTimeInterval(lease.seconds))
            try db.execute(
                sql: """
                    INSERT INTO launch_lock (deployment, environment, holder_id, host, pid, fencing_token, acquired_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (deployment, environment) DO UPDATE SET
                        holder_id = excluded.holder_id, host = excluded.host, pid = excluded.pid,
                        fencing_token = excluded.fencing_token, acquired_at = excluded.acquired_at,
                        expires_at = excluded.expires_at
                    """,
                arguments: [deployment, environment, holder.id, holder.host, holder.pid, token, now, granted.expiresAt])
            if let (previous, reason) = stolenFrom {
                try self.audit(
                    db, actor, "lock.steal", "lock:\(deployment)@\(environment)", .succeeded, deployment, environment,
                    detail: .map([
                        "from": .string(previous.holderID), "pid": .int(Int64(previous.pid)),
                        "host": .string(previous.host), "reason": .string(reason),
                    ]))
            }
            try self.audit(
                db, actor, "lock.acquire", "lock:\(deployment)@\(environment)", .succeeded, deployment, environment,
                detail: .map([
                    "holder": .string(holder.id), "pid": .int(Int64(holder.pid)), "token": .int(token),
                ]))
            return granted
        }
    }

    public func renewLaunchLock(_ lease: LaunchLease, for duration: Duration) async throws -> LaunchLease {
        try await write { db in
            try self.checkStillHeld(db, lease)
            var renewed = lease
            renewed.expiresAt = self.now.addingTimeInterval(duration.seconds)
            try db.execute(
                sql: "UPDATE launch_lock SET expires_at = ? WHERE deployment = ? AND environment = ?",
                arguments: [renewed.expiresAt, lease.deployment, lease.environment])
            return renewed
        }
    }

    public func releaseLaunchLock(_ lease: LaunchLease, actor: AuditActor) async throws {
        try await write { db in
            try self.checkStillHeld(db, lease)
            // The row stays, so the next grant's fencing token is still larger.
            try db.execute(
                sql: """
                    UPDATE launch_lock SET holder_id = NULL, host = NULL, pid = NULL, acquired_at = NULL, expires_at = NULL
                    WHERE deployment = ? AND environment = ?
                    """,
                arguments: [lease.deployment, lease.environment])
            try self.audit(
                db, actor, "lock.release", "lock:\(lease.deployment)@\(lease.environment)", .succeeded,
                lease.deployment, lease.environment, detail: .map(["token": .int(lease.fencingToken)]))
        }
    }

    public func launchLock(deployment: String, environment: String) async throws -> LaunchLease? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM launch_lock WHERE deployment = ? AND environment = ?",
                arguments: [deployment, environment]
            ).flatMap(Self.lease)
        }
    }

    private func checkStillHeld(_ db: Database, _ lease: LaunchLease) throws {
        let current = try Row.fetchOne(
            db, sql: "SELECT * FROM launch_lock WHERE deployment = ? AND environment = ?",
            arguments: [lease.deployment, lease.environment]
        ).flatMap(Self.lease)
        guard let current, current.holderID == lease.holderID, current.fencingToken == lease.fencingToken else {
            let now = current.map { "now held by \($0.holderID) (pid \($0.pid) on \($0.host))" } ?? "now free"
            throw StateStoreError(
                .lockLost,
                "the launch lock of \(lease.deployment)@\(lease.environment) (token \(lease.fencingToken)) was lost; it is \(now)",
                holder: current)
        }
    }
}

extension Duration {
    // fileprivate: other parts of the target may want their own conversion.
    fileprivate var seconds: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
