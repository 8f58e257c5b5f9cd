import Foundation
import Mesh
import PostgresNIO

// Facts, secrets, the audit trail, agent invitations and the launch lock.

extension PostgresStateStore {
    // MARK: - Facts and secrets

    public func recordFact(instanceID: UUID, name: String, value: MeshValue) async throws {
        let json = try JSONText.encode(value)
        try await self.write { session in
            try await session.execute(
                """
                INSERT INTO fact (instance_id, name, value, updated_at) VALUES (\(instanceID), \(name), \(json)::jsonb, \(self.now))
                ON CONFLICT (instance_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """)
        }
    }

    public func facts(instanceID: UUID) async throws -> [FactRecord] {
        try await self.read { session in
            try await session.rows("SELECT name, value::text AS value, updated_at FROM fact WHERE instance_id = \(instanceID) ORDER BY name").map { row in
                FactRecord(
                    instanceID: instanceID, name: try row["name"].decode(String.self), value: try JSONText.decode(try row["value"].decode(String.self)),
                    updatedAt: try row["updated_at"].decode(Date.self))
            }
        }
    }

    public func secret(
        deployment: String, environment: String, name: String, actor: AuditActor, generate: @Sendable () -> String
    ) async throws -> SecretRecord {
        try await self.write { session in
            let owner = try await self.ensureDeployment(session, deployment, environment, actor)
            if let row = try await session.first("SELECT value, created_at FROM secret WHERE deployment_id = \(owner.id) AND name = \(name)") {
                return SecretRecord(
                    deployment: deployment, environment: environment, name: name, value: try self.seal.open(try row["value"].decode(String.self)),
                    createdAt: try row["created_at"].decode(Date.self))
            }
            let now = self.now
            let value = generate()
            let sealed = try self.seal.seal(value)
            try await session.execute("INSERT INTO secret (deployment_id, name, value, created_at) VALUES (\(owner.id), \(name), \(sealed), \(now))")
            try await self.audit(session, actor, "secret.generate", "secret:\(name)", .succeeded, deployment, environment, detail: nil)
            return SecretRecord(deployment: deployment, environment: environment, name: name, value: value, createdAt: now)
        }
    }

    // MARK: - Audit

    public func appendAudit(
        actor: AuditActor, action: String, subject: String, outcome: AuditOutcome, deployment: String?, environment: String?, detail: MeshValue?
    ) async throws {
        try await self.write { session in
            try await self.audit(session, actor, action, subject, outcome, deployment, environment, detail: detail)
        }
    }

    public func auditTrail(deployment: String?, environment: String?, limit: Int) async throws -> [AuditEntry] {
        try await self.read { session in
            // NULL filters match everything, so one statement serves every combination.
            let rows = try await session.rows(
                """
                SELECT * FROM audit
                WHERE (\(deployment)::text IS NULL OR deployment = \(deployment)) AND (\(environment)::text IS NULL OR environment = \(environment))
                ORDER BY id DESC LIMIT \(limit)
                """)
            return try rows.reversed().map(Self.auditEntry)
        }
    }

    // MARK: - Agents started by hand

    public func recordAgentInvite(instanceID: String, tokenSHA256: String, expiresAt: Date, actor: AuditActor) async throws {
        try await self.write { session in
            try await session.execute(
                "INSERT INTO agent_invite (token_sha256, instance_id, created_at, expires_at) VALUES (\(tokenSHA256), \(instanceID), \(self.now), \(expiresAt))")
            try await self.audit(
                session, actor, "agent.invite", "agent:\(instanceID)", .succeeded, nil, nil,
                detail: .map(["expires_at": .string(ISO8601DateFormatter().string(from: expiresAt))]))
        }
    }

    public func redeemAgentInvite(tokenSHA256: String, actor: AuditActor) async throws -> String? {
        try await self.write { session in
            let now = self.now
            guard let row = try await session.first(
                "SELECT instance_id FROM agent_invite WHERE token_sha256 = \(tokenSHA256) AND used_at IS NULL AND expires_at > \(now)")
            else { return nil }
            let instanceID = try row["instance_id"].decode(String.self)
            try await session.execute("UPDATE agent_invite SET used_at = \(now) WHERE token_sha256 = \(tokenSHA256)")
            try await self.audit(session, actor, "agent.enroll", "agent:\(instanceID)", .succeeded, nil, nil, detail: nil)
            return instanceID
        }
    }

    // MARK: - Launch lock

    /// The writers' advisory lock makes the read-then-write below atomic across processes,
    /// as SQLite's `BEGIN IMMEDIATE` does; the row stays on release so tokens only grow.
    public func acquireLaunchLock(
        deployment: String, environment: String, holder: LockHolder, lease: Duration, actor: AuditActor
    ) async throws -> LaunchLease {
        try await self.write { session in
            let row = try await session.first("SELECT * FROM launch_lock WHERE deployment = \(deployment) AND environment = \(environment)")
            let now = self.now
            var stolenFrom: (LaunchLease, String)?
            if let row, let current = try Self.lease(row), current.holderID != holder.id {
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
            let token = (try row?["fencing_token"].decode(Int64.self) ?? 0) + 1
            let granted = LaunchLease(
                deployment: deployment, environment: environment, holderID: holder.id, host: holder.host, pid: holder.pid, fencingToken: token,
                acquiredAt: now, expiresAt: now.addingTimeInterval(Self.seconds(lease)))
            try await session.execute(
                """
                INSERT INTO launch_lock (deployment, environment, holder_id, host, pid, fencing_token, acquired_at, expires_at)
                VALUES (\(deployment), \(environment), \(holder.id), \(holder.host), \(holder.pid), \(token), \(now), \(granted.expiresAt))
                ON CONFLICT (deployment, environment) DO UPDATE SET
                    holder_id = excluded.holder_id, host = excluded.host, pid = excluded.pid, fencing_token = excluded.fencing_token,
                    acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
                """)
            if let (previous, reason) = stolenFrom {
                try await self.audit(
                    session, actor, "lock.steal", "lock:\(deployment)@\(environment)", .succeeded, deployment, environment,
                    detail: .map([
                        "from": .string(previous.holderID), "pid": .int(Int64(previous.pid)), "host": .string(previous.host), "reason": .string(reason),
                    ]))
            }
            try await self.audit(
                session, actor, "lock.acquire", "lock:\(deployment)@\(environment)", .succeeded, deployment, environment,
                detail: .map(["holder": .string(holder.id), "pid": .int(Int64(holder.pid)), "token": .int(token)]))
            return granted
        }
    }

    public func renewLaunchLock(_ lease: LaunchLease, for duration: Duration) async throws -> LaunchLease {
        try await self.write { session in
            try await Self.checkStillHeld(session, lease)
            var renewed = lease
            renewed.expiresAt = self.now.addingTimeInterval(Self.seconds(duration))
            try await session.execute(
                "UPDATE launch_lock SET expires_at = \(renewed.expiresAt) WHERE deployment = \(lease.deployment) AND environment = \(lease.environment)")
            return renewed
        }
    }

    public func releaseLaunchLock(_ lease: LaunchLease, actor: AuditActor) async throws {
        try await self.write { session in
            try await Self.checkStillHeld(session, lease)
            try await session.execute(
                """
                UPDATE launch_lock SET holder_id = NULL, host = NULL, pid = NULL, acquired_at = NULL, expires_at = NULL
                WHERE deployment = \(lease.deployment) AND environment = \(lease.environment)
                """)
            try await self.audit(
                session, actor, "lock.release", "lock:\(lease.deployment)@\(lease.environment)", .succeeded, lease.deployment, lease.environment,
                detail: .map(["token": .int(lease.fencingToken)]))
        }
    }

    public func launchLock(deployment: String, environment: String) async throws -> LaunchLease? {
        try await self.read { session in try await Self.fetchLease(session, deployment, environment) }
    }

    private static func checkStillHeld(_ session: PostgresSession, _ lease: LaunchLease) async throws {
        let current = try await Self.fetchLease(session, lease.deployment, lease.environment)
        guard let current, current.holderID == lease.holderID, current.fencingToken == lease.fencingToken else {
            let now = current.map { "now held by \($0.holderID) (pid \($0.pid) on \($0.host))" } ?? "now free"
            throw StateStoreError(
                .lockLost, "the launch lock of \(lease.deployment)@\(lease.environment) (token \(lease.fencingToken)) was lost; it is \(now)",
                holder: current)
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
