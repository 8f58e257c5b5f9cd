import Foundation
import GRDB
import Mesh

/// Invitations for agents started by hand (`conductor agent invite` / `enroll`): one row
/// per invitation, keyed by the SHA-256 of its token (the token itself is never stored),
/// used at most once and only before it expires.
enum InviteSchema {
    static func migrate(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE agent_invite (
                    token_sha256 TEXT PRIMARY KEY,
                    instance_id TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    expires_at TEXT NOT NULL,
                    used_at TEXT
                )
                """)
    }
}

extension SQLiteStateStore {
    public func recordAgentInvite(instanceID: String, tokenSHA256: String, expiresAt: Date, actor: AuditActor) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO agent_invite (token_sha256, instance_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [tokenSHA256, instanceID, self.now, expiresAt])
            try self.audit(db, actor, "agent.invite", "agent:\(instanceID)", .succeeded, nil, nil, detail: .map(["expires_at": .string(ISO8601DateFormatter().string(from: expiresAt))]))
        }
    }

    public func redeemAgentInvite(tokenSHA256: String, actor: AuditActor) async throws -> String? {
        try await write { db in
            let now = self.now
            guard let row = try Row.fetchOne(
                db, sql: "SELECT instance_id FROM agent_invite WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?",
                arguments: [tokenSHA256, now])
            else { return nil }
            let instanceID: String = row["instance_id"]
            try db.execute(sql: "UPDATE agent_invite SET used_at = ? WHERE token_sha256 = ?", arguments: [now, tokenSHA256])
            try self.audit(db, actor, "agent.enroll", "agent:\(instanceID)", .succeeded, nil, nil, detail: nil)
            return instanceID
        }
    }
}
