import Foundation
import GRDB

// Read-only views: what a roll-forward must finish, and what `conductor status` shows.
// Each is read in one transaction, so it is a consistent snapshot.

extension SQLiteStateStore {
    public func pendingWork(deployment: String, environment: String) async throws -> PendingWork? {
        try await read { db in
            guard let owner = try Self.fetchDeployment(db, deployment, environment) else { return nil }
            return try self.pendingWork(db, owner)
        }
    }

    func pendingWork(_ db: Database, _ owner: DeploymentRecord) throws -> PendingWork {
        var work = PendingWork(
            deployment: owner, generation: nil, instancesToStart: [], instancesStarting: [],
            instancesToConfigure: [], jobsToSend: [], jobsAwaitingResult: [], instancesToTerminate: [])
        let live = "state NOT IN ('terminated')"
        if owner.status == .terminating || owner.status == .terminated {
            // Teardown: every instance of every generation must end.
            work.instancesToTerminate = try Self.fetchInstances(
                db,
                where: "\(live) AND generation_id IN (SELECT id FROM generation WHERE deployment_id = ?) ORDER BY created_at, member",
                [owner.id])
            return work
        }
        work.instancesToTerminate = try Self.fetchInstances(
            db,
            where: """
                \(live) AND generation_id IN (
                    SELECT id FROM generation WHERE deployment_id = ? AND status IN ('old', 'failed'))
                ORDER BY created_at, member
                """,
            [owner.id])
        guard let generation = try Self.fetchGenerations(
            db, where: "deployment_id = ? AND status IN ('pending', 'active') ORDER BY number DESC LIMIT 1",
            [owner.id]
        ).first else { return work }
        work.generation = generation
        let instances = try Self.fetchInstances(db, where: "generation_id = ? ORDER BY member", [generation.id])
        work.instancesToStart = instances.filter { $0.state == .recorded }
        work.instancesStarting = instances.filter { $0.state == .starting }
        work.instancesToConfigure = instances.filter { $0.state == .started || $0.state == .configuring }
        let jobs = try fetchJobs(
            db,
            where: """
                state IN ('recorded', 'sent') AND instance_id IN (
                    SELECT id FROM instance WHERE generation_id = ? AND state NOT IN ('failed', 'terminated'))
                ORDER BY created_at, name
                """,
            [generation.id])
        work.jobsToSend = jobs.filter { $0.state == .recorded }
        work.jobsAwaitingResult = jobs.filter { $0.state == .sent }
        return work
    }

    public func status() async throws -> [DeploymentStatusReport] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM deployment ORDER BY name, environment")
                .map(Self.deployment)
                .map { try self.report(db, $0) }
        }
    }

    public func status(deployment: String, environment: String) async throws -> DeploymentStatusReport? {
        try await read { db in
            try Self.fetchDeployment(db, deployment, environment).map { try self.report(db, $0) }
        }
    }

    public func recentFailures(deployment: String, environment: String) async throws -> [FailedDeploymentRecord] {
        try await read { db in
            guard let owner = try Self.fetchDeployment(db, deployment, environment) else { return [] }
            return try Self.recentFailures(db, owner)
        }
    }

    static func recentFailures(_ db: Database, _ owner: DeploymentRecord) throws -> [FailedDeploymentRecord] {
        try Row.fetchAll(
            db, sql: "SELECT * FROM failed_deployment WHERE deployment_id = ? ORDER BY id DESC",
            arguments: [owner.id]
        ).map { row in
            FailedDeploymentRecord(
                id: row["id"], deployment: owner.name, environment: owner.environment, generation: row["generation"],
                reason: row["reason"], failedAt: row["failed_at"])
        }
    }

    func report(_ db: Database, _ owner: DeploymentRecord) throws -> DeploymentStatusReport {
        let active = try Self.fetchGenerations(db, where: "deployment_id = ? AND status = 'active'", [owner.id]).first
        let pending = try Self.fetchGenerations(
            db, where: "deployment_id = ? AND status = 'pending' AND number > ? ORDER BY number DESC LIMIT 1",
            [owner.id, active?.number ?? 0]
        ).first
        let newest = try Self.fetchGenerations(db, where: "deployment_id = ? ORDER BY number DESC LIMIT 1", [owner.id])
            .first
        let shown = pending ?? active ?? newest
        var instances: [InstanceStatus] = []
        var failures: [String] = []
        if let shown {
            for instance in try Self.fetchInstances(db, where: "generation_id = ? ORDER BY member", [shown.id]) {
                let jobs = try self.fetchJobs(
                    db, where: "instance_id = ? ORDER BY created_at, name", [instance.id.uuidString])
                instances.append(InstanceStatus(instance: instance, jobs: jobs))
                if instance.state == .failed {
                    failures.append("\(instance.member): \(instance.failureReason ?? "failed")")
                }
                for job in jobs where job.state == .failed {
                    let result = try job.result.map(JSONText.encode) ?? "no result"
                    failures.append("\(instance.member) job \(job.name): \(result)")
                }
            }
        }
        if owner.status == .failed, let reason = owner.failureReason {
            failures.insert("deployment: \(reason)", at: 0)
        }
        let lock = try Row.fetchOne(
            db, sql: "SELECT * FROM launch_lock WHERE deployment = ? AND environment = ?",
            arguments: [owner.name, owner.environment]
        ).flatMap(Self.lease)
        return DeploymentStatusReport(
            deployment: owner, activeGeneration: active, pendingGeneration: pending, shownGeneration: shown,
            instances: instances,
            failures: failures, recentFailures: try Self.recentFailures(db, owner), lock: lock)
    }
}
