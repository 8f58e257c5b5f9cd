import Foundation
import Mesh
import PostgresNIO

// Deployments, generations, instances and jobs: the same steps as SQLiteStateStore.swift,
// each in one `write` transaction with its audit entry.

extension PostgresStateStore: StateStore {
    public func ensureDeployment(_ name: String, environment: String, actor: AuditActor) async throws -> DeploymentRecord {
        try await self.write { session in try await self.ensureDeployment(session, name, environment, actor) }
    }

    public func deployment(_ name: String, environment: String) async throws -> DeploymentRecord? {
        try await self.read { session in try await Self.fetchDeployment(session, name, environment) }
    }

    @discardableResult
    public func setDeploymentStatus(
        _ name: String, environment: String, to status: DeploymentStatus, reason: String?, actor: AuditActor
    ) async throws -> DeploymentRecord {
        try await self.write { session in
            guard let deployment = try await Self.fetchDeployment(session, name, environment) else {
                throw StateStoreError(.notFound, "no deployment \(name) in environment \(environment)")
            }
            return try await self.setStatus(session, deployment, status, reason: reason, generation: nil, actor: actor)
        }
    }

    public func recordGeneration(
        deployment: String, environment: String, document: String, documentHash: String, actor: AuditActor
    ) async throws -> GenerationRecord {
        try await self.write { session in
            let owner = try await self.ensureDeployment(session, deployment, environment, actor)
            let live = try await Self.fetchGenerations(
                session, "SELECT * FROM generation WHERE deployment_id = \(owner.id) AND status IN ('pending', 'active') ORDER BY number DESC")
            if let newest = live.first, newest.documentHash == documentHash { return newest }
            let last = try await session.first("SELECT MAX(number) AS number FROM generation WHERE deployment_id = \(owner.id)")?["number"].decode(Int?.self) ?? 0
            let number = last + 1
            let now = self.now
            for pending in live where pending.status == .pending {
                try await session.execute(
                    "UPDATE generation SET status = 'failed', failure_reason = \("superseded by generation \(number)") WHERE id = \(pending.id)")
            }
            let row = try await session.first(
                """
                INSERT INTO generation (deployment_id, number, status, document, document_hash, created_at)
                VALUES (\(owner.id), \(number), 'pending', \(document), \(documentHash), \(now)) RETURNING id
                """)
            guard let id = try row?["id"].decode(Int64.self) else { throw StateStoreError(.schema, "no id for generation \(number)") }
            try await self.audit(
                session, actor, "generation.record", "deployment:\(deployment)@\(environment)", .succeeded, deployment, environment,
                detail: .map([
                    "generation": .int(Int64(number)), "hash": .string(documentHash),
                    "superseded": .list(live.filter { $0.status == .pending }.map { .int(Int64($0.number)) }),
                ]))
            return GenerationRecord(
                id: id, deploymentID: owner.id, number: number, status: .pending, document: document, documentHash: documentHash,
                failureReason: nil, createdAt: now, activatedAt: nil)
        }
    }

    @discardableResult
    public func activateGeneration(_ generationID: Int64, actor: AuditActor) async throws -> GenerationRecord {
        try await self.write { session in
            let (generation, owner) = try await self.fetchGenerationAndOwner(session, generationID)
            if generation.status == .active { return generation }
            guard generation.status == .pending else {
                throw StateStoreError(
                    .invalidTransition,
                    "generation \(generation.number) of \(owner.name)@\(owner.environment) is \(generation.status.rawValue); only a pending generation can be activated")
            }
            let previous = try await Self.fetchGenerations(
                session, "SELECT * FROM generation WHERE deployment_id = \(owner.id) AND status = 'active'"
            ).first
            let now = self.now
            // Old first: the partial unique index allows one active generation at a time.
            try await session.execute("UPDATE generation SET status = 'old' WHERE deployment_id = \(owner.id) AND status = 'active'")
            try await session.execute("UPDATE generation SET status = 'active', activated_at = \(now) WHERE id = \(generationID)")
            try await self.audit(
                session, actor, "generation.activate", "deployment:\(owner.name)@\(owner.environment)", .succeeded, owner.name, owner.environment,
                detail: .map(["generation": .int(Int64(generation.number)), "previous": previous.map { .int(Int64($0.number)) } ?? .null]))
            var active = generation
            active.status = .active
            active.activatedAt = now
            return active
        }
    }

    @discardableResult
    public func failGeneration(_ generationID: Int64, reason: String, actor: AuditActor) async throws -> GenerationRecord {
        try await self.write { session in
            let (generation, owner) = try await self.fetchGenerationAndOwner(session, generationID)
            if generation.status == .failed { return generation }
            guard generation.status == .pending else {
                throw StateStoreError(
                    .invalidTransition,
                    "generation \(generation.number) of \(owner.name)@\(owner.environment) is \(generation.status.rawValue); only a pending generation can fail")
            }
            try await session.execute("UPDATE generation SET status = 'failed', failure_reason = \(reason) WHERE id = \(generationID)")
            try await self.audit(
                session, actor, "generation.fail", "deployment:\(owner.name)@\(owner.environment)", .failed, owner.name, owner.environment,
                detail: .map(["generation": .int(Int64(generation.number)), "reason": .string(reason)]))
            try await self.setStatus(session, owner, .failed, reason: reason, generation: generation.number, actor: actor)
            var failed = generation
            failed.status = .failed
            failed.failureReason = reason
            return failed
        }
    }

    public func generations(deployment: String, environment: String) async throws -> [GenerationRecord] {
        try await self.read { session in
            guard let owner = try await Self.fetchDeployment(session, deployment, environment) else { return [] }
            return try await Self.fetchGenerations(session, "SELECT * FROM generation WHERE deployment_id = \(owner.id) ORDER BY number")
        }
    }

    // MARK: - Instances

    public func recordInstanceIntent(
        generationID: Int64, member: String, provider: String, actor: AuditActor
    ) async throws -> InstanceRecord {
        try await self.write { session in
            let (generation, owner) = try await self.fetchGenerationAndOwner(session, generationID)
            if let existing = try await Self.fetchInstances(
                session, "SELECT * FROM instance WHERE generation_id = \(generationID) AND member = \(member)"
            ).first {
                guard existing.provider == provider else {
                    throw StateStoreError(
                        .conflict, "\(member) of generation \(generation.number) is recorded with provider \(existing.provider), not \(provider)")
                }
                return existing
            }
            guard generation.status == .pending || generation.status == .active else {
                throw StateStoreError(
                    .invalidTransition,
                    "generation \(generation.number) of \(owner.name)@\(owner.environment) is \(generation.status.rawValue); no new instance can join it")
            }
            let now = self.now
            let instance = InstanceRecord(
                id: UUID(), generationID: generationID, member: member, provider: provider, providerHandle: nil, state: .recorded, address: nil,
                failureReason: nil, createdAt: now, updatedAt: now)
            try await session.execute(
                """
                INSERT INTO instance (id, generation_id, member, provider, state, created_at, updated_at)
                VALUES (\(instance.id), \(generationID), \(member), \(provider), 'recorded', \(now), \(now))
                """)
            try await self.audit(
                session, actor, "instance.record", "instance:\(instance.id.uuidString)", .succeeded, owner.name, owner.environment,
                detail: .map(["member": .string(member), "provider": .string(provider), "generation": .int(Int64(generation.number))]))
            return instance
        }
    }

    @discardableResult
    public func transitionInstance(
        _ id: UUID, to state: InstanceState, providerHandle: String?, address: String?, reason: String?, actor: AuditActor
    ) async throws -> InstanceRecord {
        try await self.write { session in
            guard let current = try await Self.fetchInstance(session, id) else { throw StateStoreError(.notFound, "no instance \(id.uuidString)") }
            guard current.state.canMove(to: state) else {
                throw StateStoreError(
                    .invalidTransition, "instance \(current.member) (\(id.uuidString)) cannot go from \(current.state.rawValue) to \(state.rawValue)")
            }
            var next = current
            next.state = state
            next.providerHandle = providerHandle ?? current.providerHandle
            next.address = address ?? current.address
            next.failureReason = reason ?? (state == .failed ? current.failureReason : nil)
            if next == current { return current }
            next.updatedAt = self.now
            try await session.execute(
                """
                UPDATE instance SET state = \(state.rawValue), provider_handle = \(next.providerHandle), address = \(next.address),
                    failure_reason = \(next.failureReason), updated_at = \(next.updatedAt)
                WHERE id = \(id)
                """)
            let owner = try await self.owner(session, generationID: current.generationID)
            var detail: [String: MeshValue] = [
                "member": .string(current.member), "from": .string(current.state.rawValue), "to": .string(state.rawValue),
            ]
            if let providerHandle { detail["handle"] = .string(providerHandle) }
            if let address { detail["address"] = .string(address) }
            if let reason { detail["reason"] = .string(reason) }
            try await self.audit(
                session, actor, "instance.transition", "instance:\(id.uuidString)", state == .failed ? .failed : .succeeded, owner.name,
                owner.environment, detail: .map(detail))
            return next
        }
    }

    public func instance(_ id: UUID) async throws -> InstanceRecord? {
        try await self.read { session in try await Self.fetchInstance(session, id) }
    }

    public func instances(generationID: Int64) async throws -> [InstanceRecord] {
        try await self.read { session in
            try await Self.fetchInstances(session, "SELECT * FROM instance WHERE generation_id = \(generationID) ORDER BY member")
        }
    }

    // MARK: - Jobs

    public func recordJobIntent(instanceID: UUID, name: String, payload: MeshValue, actor: AuditActor) async throws -> JobRecord {
        let sealed = try self.seal.seal(try JSONText.encode(payload))
        return try await self.write { session in
            guard let instance = try await Self.fetchInstance(session, instanceID) else {
                throw StateStoreError(.notFound, "no instance \(instanceID.uuidString)")
            }
            if let existing = try await self.fetchJobs(session, "SELECT * FROM job WHERE instance_id = \(instanceID) AND name = \(name)").first {
                return existing
            }
            guard !instance.state.isTerminal && instance.state != .failed else {
                throw StateStoreError(
                    .invalidTransition, "instance \(instance.member) is \(instance.state.rawValue); no job can be recorded for it")
            }
            let now = self.now
            let job = JobRecord(
                id: UUID().uuidString.lowercased(), instanceID: instanceID, name: name, payload: payload, state: .recorded, result: nil,
                createdAt: now, updatedAt: now)
            try await session.execute(
                """
                INSERT INTO job (id, instance_id, name, payload, state, created_at, updated_at)
                VALUES (\(job.id), \(instanceID), \(name), \(sealed), 'recorded', \(now), \(now))
                """)
            let owner = try await self.owner(session, generationID: instance.generationID)
            try await self.audit(
                session, actor, "job.record", "job:\(job.id)", .succeeded, owner.name, owner.environment,
                detail: .map(["member": .string(instance.member), "name": .string(name)]))
            return job
        }
    }

    @discardableResult
    public func transitionJob(_ id: String, to state: JobState, result: MeshValue?, actor: AuditActor) async throws -> JobRecord {
        try await self.write { session in
            guard let current = try await self.fetchJobs(session, "SELECT * FROM job WHERE id = \(id)").first else {
                throw StateStoreError(.notFound, "no job \(id)")
            }
            guard current.state.canMove(to: state) else {
                throw StateStoreError(
                    .invalidTransition, "job \(current.name) (\(id)) cannot go from \(current.state.rawValue) to \(state.rawValue)")
            }
            var next = current
            next.state = state
            next.result = result ?? current.result
            next.updatedAt = self.now
            let json = try next.result.map(JSONText.encode)
            try await session.execute(
                "UPDATE job SET state = \(state.rawValue), result = \(json)::jsonb, updated_at = \(next.updatedAt) WHERE id = \(id)")
            let instance = try await Self.fetchInstance(session, current.instanceID)
            var owner: DeploymentRecord?
            if let instance { owner = try await self.owner(session, generationID: instance.generationID) }
            try await self.audit(
                session, actor, "job.transition", "job:\(id)", state == .failed ? .failed : .succeeded, owner?.name, owner?.environment,
                detail: .map([
                    "name": .string(current.name), "member": .string(instance?.member ?? "?"), "from": .string(current.state.rawValue),
                    "to": .string(state.rawValue),
                ]))
            return next
        }
    }

    public func jobs(instanceID: UUID) async throws -> [JobRecord] {
        try await self.read { session in
            try await self.fetchJobs(session, "SELECT * FROM job WHERE instance_id = \(instanceID) ORDER BY created_at, name")
        }
    }
}
