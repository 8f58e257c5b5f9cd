import Foundation
import GRDB
import Mesh

// Rows to records. Columns are read by name, so the same mapping serves any query that
// selects a table's columns.

/// MeshValue trees are stored as JSON text (jsonb in PostgreSQL).
enum JSONText {
    static func encode(_ value: MeshValue) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> MeshValue {
        try JSONDecoder().decode(MeshValue.self, from: Data(text.utf8))
    }
}

extension SQLiteStateStore {
    static func enumValue<E: RawRepresentable>(_ row: Row, _ column: String, as _: E.Type) throws -> E
    where E.RawValue == String {
        let raw: String = row[column]
        guard let value = E(rawValue: raw) else {
            throw StateStoreError(.schema, "unknown \(column) '\(raw)' in the state store")
        }
        return value
    }

    static func uuid(_ row: Row, _ column: String) throws -> UUID {
        let raw: String = row[column]
        guard let id = UUID(uuidString: raw) else {
            throw StateStoreError(.schema, "malformed \(column) '\(raw)' in the state store")
        }
        return id
    }

    static func deployment(_ row: Row) throws -> DeploymentRecord {
        DeploymentRecord(
            id: row["id"], name: row["name"], environment: row["environment"],
            status: try enumValue(row, "status", as: DeploymentStatus.self), failureReason: row["failure_reason"],
            createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    static func generation(_ row: Row) throws -> GenerationRecord {
        GenerationRecord(
            id: row["id"], deploymentID: row["deployment_id"], number: row["number"],
            status: try enumValue(row, "status", as: GenerationStatus.self), document: row["document"],
            documentHash: row["document_hash"], failureReason: row["failure_reason"], createdAt: row["created_at"],
            activatedAt: row["activated_at"])
    }

    static func instance(_ row: Row) throws -> InstanceRecord {
        InstanceRecord(
            id: try uuid(row, "id"), generationID: row["generation_id"], member: row["member"],
            provider: row["provider"], providerHandle: row["provider_handle"],
            state: try enumValue(row, "state", as: InstanceState.self), address: row["address"],
            failureReason: row["failure_reason"], createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    static func job(_ row: Row, seal: StateSeal) throws -> JobRecord {
        let result: String? = row["result"]
        return JobRecord(
            id: row["id"], instanceID: try uuid(row, "instance_id"), name: row["name"],
            payload: try JSONText.decode(try seal.open(row["payload"])), state: try enumValue(row, "state", as: JobState.self),
            result: try result.map(JSONText.decode), createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    static func auditEntry(_ row: Row) throws -> AuditEntry {
        let actor: String = row["actor"]
        let detail: String? = row["detail"]
        return AuditEntry(
            id: row["id"], at: row["at"], actor: AuditActor(stored: actor) ?? AuditActor(kind: .system, name: actor),
            action: row["action"], subject: row["subject"],
            outcome: try enumValue(row, "outcome", as: AuditOutcome.self), deployment: row["deployment"],
            environment: row["environment"], detail: try detail.map(JSONText.decode))
    }

    static func lease(_ row: Row) -> LaunchLease? {
        guard let holder: String = row["holder_id"] else { return nil }
        return LaunchLease(
            deployment: row["deployment"], environment: row["environment"], holderID: holder, host: row["host"],
            pid: row["pid"], fencingToken: row["fencing_token"], acquiredAt: row["acquired_at"],
            expiresAt: row["expires_at"])
    }

    static func fetchDeployment(_ db: Database, _ name: String, _ environment: String) throws -> DeploymentRecord? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM deployment WHERE name = ? AND environment = ?", arguments: [name, environment]
        ).map(deployment)
    }

    static func fetchGenerations(_ db: Database, where clause: String, _ arguments: StatementArguments) throws
        -> [GenerationRecord]
    {
        try Row.fetchAll(db, sql: "SELECT * FROM generation WHERE \(clause)", arguments: arguments).map(generation)
    }

    static func fetchInstances(_ db: Database, where clause: String, _ arguments: StatementArguments) throws
        -> [InstanceRecord]
    {
        try Row.fetchAll(db, sql: "SELECT * FROM instance WHERE \(clause)", arguments: arguments).map(instance)
    }

    /// Payloads are opened with the store's seal (they hold resolved secrets).
    func fetchJobs(_ db: Database, where clause: String, _ arguments: StatementArguments) throws -> [JobRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM job WHERE \(clause)", arguments: arguments).map { try Self.job($0, seal: self.seal) }
    }
}
