#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Mesh

/// The default state store: one SQLite file in WAL mode, shared safely by several
/// `conductor` processes (every write is a `BEGIN IMMEDIATE` transaction, waiting up to
/// `busyTimeout` for another writer).
public final class SQLiteStateStore: StateStore {
    public let path: String
    let pool: DatabasePool
    let options: StateStoreOptions
    /// Seals secrets and job payloads (`StateSeal`).
    let seal: StateSeal

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String, options: StateStoreOptions = StateStoreOptions(), busyTimeout: TimeInterval = 10) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        configuration.label = "conductor-state"
        self.path = path
        self.options = options
        self.seal = try StateSeal(keyFile: options.keyFile ?? StateSeal.defaultKeyFile(databasePath: path))
        Self.restrictToOwner(databasePath: path)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StateStoreError(.schema, "cannot open the state store \(path): \(error)")
        }
        let migrator = SQLiteSchema.migrator
        let superseded = try pool.read { db in try migrator.hasBeenSuperseded(db) }
        if superseded {
            throw StateStoreError(
                .schema, "the state store \(path) was written by a newer conductor; upgrade this one")
        }
        try migrator.migrate(pool)
        try self.sealWhatWasWrittenUnsealed()
    }

    /// Secrets and job payloads written before the state was sealed (or by an older
    /// conductor) are sealed now, in one transaction.
    private func sealWhatWasWrittenUnsealed() throws {
        let seal = self.seal
        let pattern = StateSeal.prefix + "%"
        try pool.write { db in
            for row in try Row.fetchAll(db, sql: "SELECT deployment_id, name, value FROM secret WHERE value NOT LIKE ?", arguments: [pattern]) {
                let value: String = row["value"]
                try db.execute(
                    sql: "UPDATE secret SET value = ? WHERE deployment_id = ? AND name = ?",
                    arguments: [try seal.seal(value), row["deployment_id"] as Int64, row["name"] as String])
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, payload FROM job WHERE payload NOT LIKE ?", arguments: [pattern]) {
                let payload: String = row["payload"]
                try db.execute(sql: "UPDATE job SET payload = ? WHERE id = ?", arguments: [try seal.seal(payload), row["id"] as String])
            }
        }
    }

    /// The store holds generated secrets and job payloads: its directory is made 0700 (when
    /// it is ours) and the database 0600 before SQLite opens it. SQLite creates the WAL and
    /// shared-memory files with the database's mode; ones left wider by an older conductor
    /// are narrowed too.
    static func restrictToOwner(databasePath path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            if !FileManager.default.fileExists(atPath: directory) {
                try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            var status = stat()
            if stat(directory, &status) == 0, status.st_uid == getuid(), status.st_mode & 0o077 != 0 {
                chmod(directory, 0o700)
            }
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        for file in [path, path + "-wal", path + "-shm"] {
            var status = stat()
            if stat(file, &status) == 0, status.st_uid == getuid(), status.st_mode & 0o077 != 0 { chmod(file, 0o600) }
        }
    }

    /// Closes every connection; the store is unusable afterwards.
    public func close() throws {
        try pool.close()
    }

    /// The migrations applied to the file, in order (for `conductor status --verbose` and tests).
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try SQLiteSchema.migrator.appliedMigrations(db) }
    }

    // MARK: - Transactions

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the
    /// first read, so a read-then-write can never be overtaken by another process.
    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            guard let result else { preconditionFailure("committed transaction without a result") }
            return result
        }
    }

    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }

    var now: Date { options.clock() }

    // MARK: - Deployments and generations

    public func ensureDeployment(_ name: String, environment: String, actor: AuditActor) async throws -> DeploymentRecord {
        try await write { db in try self.ensureDeployment(db, name, environment, actor) }
    }

    public func deployment(_ name: String, environment: String) async throws -> DeploymentRecord? {
        try await read { db in try Self.fetchDeployment(db, name, environment) }
    }

    @discardableResult
    public func setDeploymentStatus(
        _ name: String, environment: String, to status: DeploymentStatus, reason: String?, actor: AuditActor
    ) async throws -> DeploymentRecord {
        try await write { db in
            guard let deployment = try Self.fetchDeployment(db, name, environment) else {
                throw StateStoreError(.notFound, "no deployment \(name) in environment \(environment)")
            }
            return try self.setStatus(db, deployment, status, reason: reason, generation: nil, actor: actor)
        }
    }

    public func recordGeneration(
        deployment: String, environment: String, document: String, documentHash: String, actor: AuditActor
    ) async throws -> GenerationRecord {
        try await write { db in
            let owner = try self.ensureDeployment(db, deployment, environment, actor)
            let live = try Self.fetchGenerations(
                db, where: "deployment_id = ? AND status IN ('pending', 'active') ORDER BY number DESC",
                [owner.id])
            if let newest = live.first, newest.documentHash == documentHash {
                return newest
            }
            let last = try Int.fetchOne(
                db, sql: "SELECT MAX(number) FROM generation WHERE deployment_id = ?", arguments: [owner.id]) ?? 0
            let number = last + 1
            let now = self.now
            for pending in live where pending.status == .pending {
                try db.execute(
                    sql: "UPDATE generation SET status = 'failed', failure_reason = ? WHERE id = ?",
                    arguments: ["superseded by generation \(number)", pending.id])
            }
            try db.execute(
                sql: """
                    INSERT INTO generation (deployment_id, number, status, document, document_hash, created_at)
                    VALUES (?, ?, 'pending', ?, ?, ?)
                    """,
                arguments: [owner.id, number, document, documentHash, now])
            let generation = GenerationRecord(
                id: db.lastInsertedRowID, deploymentID: owner.id, number: number, status: .pending,
                document: document, documentHash: documentHash, failureReason: nil, createdAt: now,
                activatedAt: nil)
            try self.audit(
                db, actor, "generation.record", "deployment:\(deployment)@\(environment)", .succeeded,
                deployment, environment,
                detail: .map([
                    "generation": .int(Int64(number)), "hash": .string(documentHash),
                    "superseded": .list(live.filter { $0.status == .pending }.map { .int(Int64($0.number)) }),
                ]))
            return generation
        }
    }

    @discardableResult
    public func activateGeneration(_ generationID: Int64, actor: AuditActor) async throws -> GenerationRecord {
        try await write { db in
            let (generation, owner) = try self.fetchGenerationAndOwner(db, generationID)
            if generation.status == .active { return generation }
            guard generation.status == .pending else {
                throw StateStoreError(
                    .invalidTransition,
                    "generation \(generation.number) of \(owner.name)@\(owner.environment) is \(generation.status.rawValue); only a pending generation can be activated")
            }
            let previous = try Self.fetchGenerations(
                db, where: "deployment_id = ? AND status = 'active'", [owner.id]
            ).first
            let now = self.now
            // Old first: the partial unique index allows one active generation at a time.
            try db.execute(
                sql: "UPDATE generation SET status = 'old' WHERE deployment_id = ? AND status = 'active'",
                arguments: [owner.id])
            try db.execute(
                sql: "UPDATE generation SET status = 'active', activated_at = ? WHERE id = ?",
                arguments: [now, generationID])
            try self.audit(
                db, actor, "generation.activate", "deployment:\(owner.name)@\(owner.environment)", .succeeded,
                owner.name, owner.environment,
                detail: .map([
                    "generation": .int(Int64(generation.number)),
                    "previous": previous.map { .int(Int64($0.number)) } ?? .null,
                ]))
            var active = generation
            active.status = .active
            active.activatedAt = now
            return active
        }
    }

    @discardableResult
    public func failGeneration(_ generationID: Int64, reason: String, actor: AuditActor) async throws -> GenerationRecord {
        try await write { db in
            let (generation, owner) = try self.fetchGenerationAndOwner(db, generationID)
            if generation.status == .failed { return generation }
            guard generation.status == .pending else {
                throw StateStoreError(
                    .invalidTransition,
                    "generation \(generation.number) of \(owner.name)@\(owner.environment) is \(generation.status.rawValue); only a pending generation can fail")
            }
            try db.execute(
                sql: "UPDATE generation SET status = 'failed', failure_reason = ? WHERE id = ?",
                arguments: [reason, generationID])
            try self.audit(
                db, actor, "generation.fail", "deployment:\(owner.name)@\(owner.environment)", .failed,
                owner.name, owner.environment,
                detail: .map(["generation": .int(Int64(generation.number)), "reason": .string(reason)]))
            // A rollout that failed is a failed deployment: its reason joins the history.
            try self.setStatus(db, owner, .failed, reason: reason, generation: generation.number, actor: actor)
            var failed = generation
            failed.status = .failed
            failed.failureReason = reason
            return failed
        }
    }

    public func generations(deployment: String, environment: String) async throws -> [GenerationRecord] {
        try await read { db in
            guard let owner = try Self.fetchDeployment(db, deployment, environment) else { return [] }
            return try Self.fetchGenerations(db, where: "deployment_id = ? ORDER BY number", [owner.id])
        }
    }

    // MARK: - Instances

    public func recordInstanceIntent(
        generationID: Int64, member: String, provider: String, actor: AuditActor
    ) async throws -> InstanceRecord {
        try await write { db in
            let (generation, owner) = try self.fetchGenerationAndOwner(db, generationID)
            if let existing = try Self.fetchInstances(
                db, where: "generation_id = ? AND member = ?", [generationID, member]
            ).first {
                guard existing.provider == provider else {
                    throw StateStoreError(
                        .conflict,
                        "\(member) of generation \(generation.number) is recorded with provider \(existing.provider), not \(provider)")
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
                id: UUID(), generationID: generationID, member: member, provider: provider, providerHandle: nil,
                state: .recorded, address: nil, failureReason: nil, createdAt: now, updatedAt: now)
            try db.execute(
                sql: """
                    INSERT INTO instance (id, generation_id, member, provider, state, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 'recorded', ?, ?)
                    """,
                arguments: [instance.id.uuidString, generationID, member, provider, now, now])
            try self.audit(
                db, actor, "instance.record", "instance:\(instance.id.uuidString)", .succeeded,
                owner.name, owner.environment,
                detail: .map([
                    "member": .string(member), "provider": .string(provider),
                    "generation": .int(Int64(generation.number)),
                ]))
            return instance
        }
    }

    @discardableResult
    public func transitionInstance(
        _ id: UUID, to state: InstanceState, providerHandle: String?, address: String?, reason: String?,
        actor: AuditActor
    ) async throws -> InstanceRecord {
        try await write { db in
            guard let current = try Self.fetchInstances(db, where: "id = ?", [id.uuidString]).first else {
                throw StateStoreError(.notFound, "no instance \(id.uuidString)")
            }
            guard current.state.canMove(to: state) else {
                throw StateStoreError(
                    .invalidTransition,
                    "instance \(current.member) (\(id.uuidString)) cannot go from \(current.state.rawValue) to \(state.rawValue)")
            }
            var next = current
            next.state = state
            next.providerHandle = providerHandle ?? current.providerHandle
            next.address = address ?? current.address
            next.failureReason = reason ?? (state == .failed ? current.failureReason : nil)
            if next == current { return current }
            next.updatedAt = self.now
            try db.execute(
                sql: """
                    UPDATE instance SET state = ?, provider_handle = ?, address = ?, failure_reason = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    state.rawValue, next.providerHandle, next.address, next.failureReason, next.updatedAt,
                    id.uuidString,
                ])
            let owner = try self.owner(db, generationID: current.generationID)
            var detail: [String: MeshValue] = [
                "member": .string(current.member), "from": .string(current.state.rawValue),
                "to": .string(state.rawValue),
            ]
            if let providerHandle { detail["handle"] = .string(providerHandle) }
            if let address { detail["address"] = .string(address) }
            if let reason { detail["reason"] = .string(reason) }
            try self.audit(
                db, actor, "instance.transition", "instance:\(id.uuidString)",
                state == .failed ? .failed : .succeeded, owner.name, owner.environment, detail: .map(detail))
            return next
        }
    }

    public func instance(_ id: UUID) async throws -> InstanceRecord? {
        try await read { db in try Self.fetchInstances(db, where: "id = ?", [id.uuidString]).first }
    }

    public func instances(generationID: Int64) async throws -> [InstanceRecord] {
        try await read { db in
            try Self.fetchInstances(db, where: "generation_id = ? ORDER BY member", [generationID])
        }
    }

    // MARK: - Jobs

    public func recordJobIntent(
        instanceID: UUID, name: String, payload: MeshValue, actor: AuditActor
    ) async throws -> JobRecord {
        try await write { db in
            guard let instance = try Self.fetchInstances(db, where: "id = ?", [instanceID.uuidString]).first else {
                throw StateStoreError(.notFound, "no instance \(instanceID.uuidString)")
            }
            if let existing = try self.fetchJobs(
                db, where: "instance_id = ? AND name = ?", [instanceID.uuidString, name]
            ).first {
                return existing
            }
            guard !instance.state.isTerminal && instance.state != .failed else {
                throw StateStoreError(
                    .invalidTransition,
                    "instance \(instance.member) is \(instance.state.rawValue); no job can be recorded for it")
            }
            let now = self.now
            let job = JobRecord(
                id: UUID().uuidString.lowercased(), instanceID: instanceID, name: name, payload: payload,
                state: .recorded, result: nil, createdAt: now, updatedAt: now)
            try db.execute(
                sql: """
                    INSERT INTO job (id, instance_id, name, payload, state, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 'recorded', ?, ?)
                    """,
                arguments: [job.id, instanceID.uuidString, name, try self.seal.seal(try JSONText.encode(payload)), now, now])
            let owner = try self.owner(db, generationID: instance.generationID)
            try self.audit(
                db, actor, "job.record", "job:\(job.id)", .succeeded, owner.name, owner.environment,
                detail: .map(["member": .string(instance.member), "name": .string(name)]))
            return job
        }
    }

    @discardableResult
    public func transitionJob(_ id: String, to state: JobState, result: MeshValue?, actor: AuditActor) async throws -> JobRecord {
        try await write { db in
            guard let current = try self.fetchJobs(db, where: "id = ?", [id]).first else {
                throw StateStoreError(.notFound, "no job \(id)")
            }
            guard current.state.canMove(to: state) else {
                throw StateStoreError(
                    .invalidTransition,
                    "job \(current.name) (\(id)) cannot go from \(current.state.rawValue) to \(state.rawValue)")
            }
            var next = current
            next.state = state
            next.result = result ?? current.result
            next.updatedAt = self.now
            try db.execute(
                sql: "UPDATE job SET state = ?, result = ?, updated_at = ? WHERE id = ?",
                arguments: [state.rawValue, try next.result.map(JSONText.encode), next.updatedAt, id])
            let instance = try Self.fetchInstances(db, where: "id = ?", [current.instanceID.uuidString]).first
            let owner = try instance.map { try self.owner(db, generationID: $0.generationID) }
            try self.audit(
                db, actor, "job.transition", "job:\(id)", state == .failed ? .failed : .succeeded,
                owner?.name, owner?.environment,
                detail: .map([
                    "name": .string(current.name), "member": .string(instance?.member ?? "?"),
                    "from": .string(current.state.rawValue), "to": .string(state.rawValue),
                ]))
            return next
        }
    }

    public func jobs(instanceID: UUID) async throws -> [JobRecord] {
        try await read { db in
            try self.fetchJobs(db, where: "instance_id = ? ORDER BY created_at, name", [instanceID.uuidString])
        }
    }

    // MARK: - Facts and secrets

    public func recordFact(instanceID: UUID, name: String, value: MeshValue) async throws {
        let json = try JSONText.encode(value)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO fact (instance_id, name, value, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (instance_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """,
                arguments: [instanceID.uuidString, name, json, self.now])
        }
    }

    public func facts(instanceID: UUID) async throws -> [FactRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM fact WHERE instance_id = ? ORDER BY name", arguments: [instanceID.uuidString]
            ).map { row in
                FactRecord(
                    instanceID: instanceID, name: row["name"], value: try JSONText.decode(row["value"]),
                    updatedAt: row["updated_at"])
            }
        }
    }

    public func secret(
        deployment: String, environment: String, name: String, actor: AuditActor,
        generate: @Sendable () -> String
    ) async throws -> SecretRecord {
        try await write { db in
            let owner = try self.ensureDeployment(db, deployment, environment, actor)
            if let row = try Row.fetchOne(
                db, sql: "SELECT value, created_at FROM secret WHERE deployment_id = ? AND name = ?",
                arguments: [owner.id, name])
            {
                return SecretRecord(
                    deployment: deployment, environment: environment, name: name, value: try self.seal.open(row["value"]),
                    createdAt: row["created_at"])
            }
            let now = self.now
            let value = generate()
            try db.execute(
                sql: "INSERT INTO secret (deployment_id, name, value, created_at) VALUES (?, ?, ?, ?)",
                arguments: [owner.id, name, try self.seal.seal(value), now])
            try self.audit(
                db, actor, "secret.generate", "secret:\(name)", .succeeded, deployment, environment, detail: nil)
            return SecretRecord(deployment: deployment, environment: environment, name: name, value: value, createdAt: now)
        }
    }

    // MARK: - Audit

    public func appendAudit(
        actor: AuditActor, action: String, subject: String, outcome: AuditOutcome,
        deployment: String?, environment: String?, detail: MeshValue?
    ) async throws {
        try await write { db in
            try self.audit(db, actor, action, subject, outcome, deployment, environment, detail: detail)
        }
    }

    public func auditTrail(deployment: String?, environment: String?, limit: Int) async throws -> [AuditEntry] {
        try await read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let deployment {
                conditions.append("deployment = ?")
                arguments += [deployment]
            }
            if let environment {
                conditions.append("environment = ?")
                arguments += [environment]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [limit]
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM audit \(filter) ORDER BY id DESC LIMIT ?", arguments: arguments)
            return try rows.reversed().map(Self.auditEntry)
        }
    }

    /// Appends one audit entry inside the caller's transaction, so the change and its
    /// record commit or vanish together.
    func audit(
        _ db: Database, _ actor: AuditActor, _ action: String, _ subject: String, _ outcome: AuditOutcome,
        _ deployment: String?, _ environment: String?, detail: MeshValue?
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO audit (at, actor, action, subject, outcome, deployment, environment, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                now, actor.description, action, subject, outcome.rawValue, deployment, environment,
                try detail.map(JSONText.encode),
            ])
    }

    // MARK: - Shared steps (inside a transaction)

    func ensureDeployment(_ db: Database, _ name: String, _ environment: String, _ actor: AuditActor) throws
        -> DeploymentRecord
    {
        if let existing = try Self.fetchDeployment(db, name, environment) { return existing }
        let now = self.now
        try db.execute(
            sql: """
                INSERT INTO deployment (name, environment, status, created_at, updated_at)
                VALUES (?, ?, 'recorded', ?, ?)
                """,
            arguments: [name, environment, now, now])
        let record = DeploymentRecord(
            id: db.lastInsertedRowID, name: name, environment: environment, status: .recorded, failureReason: nil,
            createdAt: now, updatedAt: now)
        try audit(db, actor, "deployment.record", "deployment:\(name)@\(environment)", .succeeded, name, environment, detail: nil)
        return record
    }

    @discardableResult
    func setStatus(
        _ db: Database, _ deployment: DeploymentRecord, _ status: DeploymentStatus, reason: String?,
        generation: Int?, actor: AuditActor
    ) throws -> DeploymentRecord {
        guard deployment.status.canMove(to: status) else {
            throw StateStoreError(
                .invalidTransition,
                "deployment \(deployment.name)@\(deployment.environment) cannot go from \(deployment.status.rawValue) to \(status.rawValue)")
        }
        if status == .failed && (reason ?? "").isEmpty {
            throw StateStoreError(.invalidTransition, "a failed deployment needs a reason")
        }
        var next = deployment
        next.status = status
        // The reason belongs to the failure; a new launch clears it (the history keeps it).
        next.failureReason = status == .failed ? reason : nil
        if next == deployment { return deployment }
        next.updatedAt = now
        try db.execute(
            sql: "UPDATE deployment SET status = ?, failure_reason = ?, updated_at = ? WHERE id = ?",
            arguments: [status.rawValue, next.failureReason, next.updatedAt, deployment.id])
        var detail: [String: MeshValue] = [
            "from": .string(deployment.status.rawValue), "to": .string(status.rawValue),
        ]
        if let reason { detail["reason"] = .string(reason) }
        try audit(
            db, actor, "deployment.status", "deployment:\(deployment.name)@\(deployment.environment)",
            status == .failed ? .failed : .succeeded, deployment.name, deployment.environment, detail: .map(detail))
        if status == .failed, let reason {
            let number = try generation ?? Int.fetchOne(
                db,
                sql: "SELECT MAX(number) FROM generation WHERE deployment_id = ? AND status IN ('pending', 'failed')",
                arguments: [deployment.id])
            try db.execute(
                sql: "INSERT INTO failed_deployment (deployment_id, generation, reason, failed_at) VALUES (?, ?, ?, ?)",
                arguments: [deployment.id, number, reason, next.updatedAt])
            try db.execute(
                sql: """
                    DELETE FROM failed_deployment WHERE deployment_id = ? AND id NOT IN (
                        SELECT id FROM failed_deployment WHERE deployment_id = ? ORDER BY id DESC LIMIT ?)
                    """,
                arguments: [deployment.id, deployment.id, max(options.failedHistoryLimit, 0)])
        }
        return next
    }

    func fetchGenerationAndOwner(_ db: Database, _ generationID: Int64) throws -> (GenerationRecord, DeploymentRecord) {
        guard let generation = try Self.fetchGenerations(db, where: "id = ?", [generationID]).first else {
            throw StateStoreError(.notFound, "no generation with id \(generationID)")
        }
        return (generation, try owner(db, generationID: generationID))
    }

    func owner(_ db: Database, generationID: Int64) throws -> DeploymentRecord {
        guard let row = try Row.fetchOne(
            db,
            sql: "SELECT d.* FROM deployment d JOIN generation g ON g.deployment_id = d.id WHERE g.id = ?",
            arguments: [generationID])
        else {
            throw StateStoreError(.notFound, "no generation with id \(generationID)")
        }
        return try Self.deployment(row)
    }
}
