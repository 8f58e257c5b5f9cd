import Foundation
import Mesh
import PostgresNIO

// Rows to records, by column name, as SQLiteStateStore+Rows.swift does for SQLite. JSON
// columns (jsonb) are read as their text.

extension PostgresStateStore {
    static func enumValue<E: RawRepresentable>(_ row: PostgresRandomAccessRow, _ column: String, as _: E.Type) throws -> E
    where E.RawValue == String {
        let raw = try row[column].decode(String.self)
        guard let value = E(rawValue: raw) else {
            throw StateStoreError(.schema, "unknown \(column) '\(raw)' in the state store")
        }
        return value
    }

    static func deployment(_ row: PostgresRandomAccessRow) throws -> DeploymentRecord {
        DeploymentRecord(
            id: try row["id"].decode(Int64.self), name: try row["name"].decode(String.self), environment: try row["environment"].decode(String.self),
            status: try enumValue(row, "status", as: DeploymentStatus.self), failureReason: try row["failure_reason"].decode(String?.self),
            createdAt: try row["created_at"].decode(Date.self), updatedAt: try row["updated_at"].decode(Date.self))
    }

    static func generation(_ row: PostgresRandomAccessRow) throws -> GenerationRecord {
        GenerationRecord(
            id: try row["id"].decode(Int64.self), deploymentID: try row["deployment_id"].decode(Int64.self), number: try row["number"].decode(Int.self),
            status: try enumValue(row, "status", as: GenerationStatus.self), document: try row["document"].decode(String.self),
            documentHash: try row["document_hash"].decode(String.self), failureReason: try row["failure_reason"].decode(String?.self),
            createdAt: try row["created_at"].decode(Date.self), activatedAt: try row["activated_at"].decode(Date?.self))
    }

    static func instance(_ row: PostgresRandomAccessRow) throws -> InstanceRecord {
        InstanceRecord(
            id: try row["id"].decode(UUID.self), generationID: try row["generation_id"].decode(Int64.self), member: try row["member"].decode(String.self),
            provider: try row["provider"].decode(String.self), providerHandle: try row["provider_handle"].decode(String?.self),
            state: try enumValue(row, "state", as: InstanceState.self), address: try row["address"].decode(String?.self),
            failureReason: try row["failure_reason"].decode(String?.self), createdAt: try row["created_at"].decode(Date.self),
            updatedAt: try row["updated_at"].decode(Date.self))
    }

    static func job(_ row: PostgresRandomAccessRow, seal: StateSeal) throws -> JobRecord {
        JobRecord(
            id: try row["id"].decode(String.self), instanceID: try row["instance_id"].decode(UUID.self), name: try row["name"].decode(String.self),
            payload: try JSONText.decode(try seal.open(try row["payload"].decode(String.self))),
            state: try enumValue(row, "state", as: JobState.self), result: try row["result"].decode(String?.self).map(JSONText.decode),
            createdAt: try row["created_at"].decode(Date.self), updatedAt: try row["updated_at"].decode(Date.self))
    }

    static func auditEntry(_ row: PostgresRandomAccessRow) throws -> AuditEntry {
        let actor = try row["actor"].decode(String.self)
        return AuditEntry(
            id: try row["id"].decode(Int64.self), at: try row["at"].decode(Date.self),
            actor: AuditActor(stored: actor) ?? AuditActor(kind: .system, name: actor), action: try row["action"].decode(String.self),
            subject: try row["subject"].decode(String.self), outcome: try enumValue(row, "outcome", as: AuditOutcome.self),
            deployment: try row["deployment"].decode(String?.self), environment: try row["environment"].decode(String?.self),
            detail: try row["detail"].decode(String?.self).map(JSONText.decode))
    }

    static func lease(_ row: PostgresRandomAccessRow) throws -> LaunchLease? {
        guard let holder = try row["holder_id"].decode(String?.self) else { return nil }
        return LaunchLease(
            deployment: try row["deployment"].decode(String.self), environment: try row["environment"].decode(String.self), holderID: holder,
            host: try row["host"].decode(String.self), pid: try row["pid"].decode(Int32.self), fencingToken: try row["fencing_token"].decode(Int64.self),
            acquiredAt: try row["acquired_at"].decode(Date.self), expiresAt: try row["expires_at"].decode(Date.self))
    }

    static func fetchDeployment(_ session: PostgresSession, _ name: String, _ environment: String) async throws -> DeploymentRecord? {
        try await session.first("SELECT * FROM deployment WHERE name = \(name) AND environment = \(environment)").map(deployment)
    }

    /// `query` selects the generation's columns (`SELECT * FROM generation ...`).
    static func fetchGenerations(_ session: PostgresSession, _ query: PostgresQuery) async throws -> [GenerationRecord] {
        try await session.rows(query).map(generation)
    }

    static func fetchInstances(_ session: PostgresSession, _ query: PostgresQuery) async throws -> [InstanceRecord] {
        try await session.rows(query).map(instance)
    }

    static func fetchInstance(_ session: PostgresSession, _ id: UUID) async throws -> InstanceRecord? {
        try await fetchInstances(session, "SELECT * FROM instance WHERE id = \(id)").first
    }

    /// Payloads are opened with the store's seal (they hold resolved secrets).
    func fetchJobs(_ session: PostgresSession, _ query: PostgresQuery) async throws -> [JobRecord] {
        try await session.rows(query).map { try Self.job($0, seal: self.seal) }
    }

    static func fetchLease(_ session: PostgresSession, _ deployment: String, _ environment: String) async throws -> LaunchLease? {
        try await session.first("SELECT * FROM launch_lock WHERE deployment = \(deployment) AND environment = \(environment)").flatMap(lease)
    }
}
