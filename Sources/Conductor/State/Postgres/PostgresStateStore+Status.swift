import Foundation
import PostgresNIO

// Read-only views, each one snapshot (`read`): what a roll-forward must finish, and what
// `conductor status` shows. The same selections as SQLiteStateStore+Status.swift.

extension PostgresStateStore {
    public func pendingWork(deployment: String, environment: String) async throws -> PendingWork? {
        try await self.read { session in
            guard let owner = try await Self.fetchDeployment(session, deployment, environment) else { return nil }
            return try await self.pendingWork(session, owner)
        }
    }

    func pendingWork(_ session: PostgresSession, _ owner: DeploymentRecord) async throws -> PendingWork {
        var work = PendingWork(
            deployment: owner, generation: nil, instancesToStart: [], instancesStarting: [], instancesToConfigure: [], jobsToSend: [],
            jobsAwaitingResult: [], instancesToTerminate: [])
        if owner.status == .terminating || owner.status == .terminated {
            work.instancesToTerminate = try await Self.fetchInstances(
                session,
                """
                SELECT * FROM instance WHERE state NOT IN ('terminated')
                AND generation_id IN (SELECT id FROM generation WHERE deployment_id = \(owner.id)) ORDER BY created_at, member
                """)
            return work
        }
        work.instancesToTerminate = try await Self.fetchInstances(
            session,
            """
            SELECT * FROM instance WHERE state NOT IN ('terminated')
            AND generation_id IN (SELECT id FROM generation WHERE deployment_id = \(owner.id) AND status IN ('old', 'failed'))
            ORDER BY created_at, member
            """)
        guard let generation = try await Self.fetchGenerations(
            session, "SELECT * FROM generation WHERE deployment_id = \(owner.id) AND status IN ('pending', 'active') ORDER BY number DESC LIMIT 1"
        ).first else { return work }
        work.generation = generation
        let instances = try await Self.fetchInstances(session, "SELECT * FROM instance WHERE generation_id = \(generation.id) ORDER BY member")
        work.instancesToStart = instances.filter { $0.state == .recorded }
        work.instancesStarting = instances.filter { $0.state == .starting }
        work.instancesToConfigure = instances.filter { $0.state == .started || $0.state == .configuring }
        let jobs = try await self.fetchJobs(
            session,
            """
            SELECT * FROM job WHERE state IN ('recorded', 'sent') AND instance_id IN (
                SELECT id FROM instance WHERE generation_id = \(generation.id) AND state NOT IN ('failed', 'terminated'))
            ORDER BY created_at, name
            """)
        work.jobsToSend = jobs.filter { $0.state == .recorded }
        work.jobsAwaitingResult = jobs.filter { $0.state == .sent }
        return work
    }

    public func status() async throws -> [DeploymentStatusReport] {
        try await self.read { session in
            var reports: [DeploymentStatusReport] = []
            for row in try await session.rows("SELECT * FROM deployment ORDER BY name, environment") {
                reports.append(try await self.report(session, try Self.deployment(row)))
            }
            return reports
        }
    }

    public func status(deployment: String, environment: String) async throws -> DeploymentStatusReport? {
        try await self.read { session in
            guard let owner = try await Self.fetchDeployment(session, deployment, environment) else { return nil }
            return try await self.report(session, owner)
        }
    }

    public func recentFailures(deployment: String, environment: String) async throws -> [FailedDeploymentRecord] {
        try await self.read { session in
            guard let owner = try await Self.fetchDeployment(session, deployment, environment) else { return [] }
            return try await Self.recentFailures(session, owner)
        }
    }

    static func recentFailures(_ session: PostgresSession, _ owner: DeploymentRecord) async throws -> [FailedDeploymentRecord] {
        try await session.rows("SELECT * FROM failed_deployment WHERE deployment_id = \(owner.id) ORDER BY id DESC").map { row in
            FailedDeploymentRecord(
                id: try row["id"].decode(Int64.self), deployment: owner.name, environment: owner.environment,
                generation: try row["generation"].decode(Int?.self), reason: try row["reason"].decode(String.self),
                failedAt: try row["failed_at"].decode(Date.self))
        }
    }

    func report(_ session: PostgresSession, _ owner: DeploymentRecord) async throws -> DeploymentStatusReport {
        let active = try await Self.fetchGenerations(session, "SELECT * FROM generation WHERE deployment_id = \(owner.id) AND status = 'active'").first
        let activeNumber = active?.number ?? 0
        let pending = try await Self.fetchGenerations(
            session,
            "SELECT * FROM generation WHERE deployment_id = \(owner.id) AND status = 'pending' AND number > \(activeNumber) ORDER BY number DESC LIMIT 1"
        ).first
        let newest = try await Self.fetchGenerations(session, "SELECT * FROM generation WHERE deployment_id = \(owner.id) ORDER BY number DESC LIMIT 1")
            .first
        let shown = pending ?? active ?? newest
        var instances: [InstanceStatus] = []
        var failures: [String] = []
        if let shown {
            for instance in try await Self.fetchInstances(session, "SELECT * FROM instance WHERE generation_id = \(shown.id) ORDER BY member") {
                let jobs = try await self.fetchJobs(session, "SELECT * FROM job WHERE instance_id = \(instance.id) ORDER BY created_at, name")
                instances.append(InstanceStatus(instance: instance, jobs: jobs))
                if instance.state == .failed { failures.append("\(instance.member): \(instance.failureReason ?? "failed")") }
                for job in jobs where job.state == .failed {
                    let result = try job.result.map(JSONText.encode) ?? "no result"
                    failures.append("\(instance.member) job \(job.name): \(result)")
                }
            }
        }
        if owner.status == .failed, let reason = owner.failureReason { failures.insert("deployment: \(reason)", at: 0) }
        let lock = try await Self.fetchLease(session, owner.name, owner.environment)
        return DeploymentStatusReport(
            deployment: owner, activeGeneration: active, pendingGeneration: pending, shownGeneration: shown, instances: instances, failures: failures,
            recentFailures: try await Self.recentFailures(session, owner), lock: lock)
    }
}
