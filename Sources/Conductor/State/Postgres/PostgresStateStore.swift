import Foundation
import Logging
import Mesh
import PostgresNIO

/// A check made inside every write transaction of a `PostgresStateStore`, before the write
/// itself: throwing rolls the transaction back. The seam for standby coordinators, whose
/// writes must be conditional on the leadership epoch they hold (ARCHITECTURE.md decision
/// 10): a fence reads the lease row `FOR SHARE` and throws when another coordinator leads.
public protocol PostgresWriteFence: Sendable {
    func check(_ connection: PostgresConnection, logger: Logger) async throws
}

/// The state store on PostgreSQL, for teams that share one coordinator state: the same
/// records, rules and audit trail as `SQLiteStateStore` (docs/state.md), through postgres-nio.
///
/// Every write goes through `write(_:)`: one transaction that first takes the writers'
/// advisory lock (so read-then-write steps such as an idempotent intent or the launch lock
/// see every earlier commit and are never overtaken, as under SQLite's `BEGIN IMMEDIATE`),
/// then runs the optional `fence`, then the write and its audit entry. Reads run in a
/// read-only repeatable-read transaction: one consistent snapshot.
public final class PostgresStateStore: Sendable {
    public let url: PostgresStateURL
    let options: StateStoreOptions
    let seal: StateSeal
    let connections: PostgresConnections
    let logger: Logger
    let fence: (any PostgresWriteFence)?

    /// Connects, brings the schema up to date and checks the sealing key. `keyFile`: the
    /// key that seals secrets and job payloads, made only when the database has never
    /// sealed anything; otherwise a missing or different key is an error, never a new key.
    public static func open(
        _ url: PostgresStateURL, keyFile: String, options: StateStoreOptions = StateStoreOptions(), fence: (any PostgresWriteFence)? = nil,
        connectTimeout: Duration = .seconds(10), logger: Logger = Logger(label: "conductor.state", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> PostgresStateStore {
        let connections = PostgresConnections(url: url, connectTimeout: connectTimeout, logger: logger)
        do {
            let sealed = try await connections.withConnection { connection in
                let session = PostgresSession(connection: connection, logger: logger)
                return try await Self.transaction(session, url: url) { session in
                    try await PostgresSchema.migrate(session, url: url)
                    return try await session.first("SELECT sealed FROM seal_check WHERE id = 1").map { try $0["sealed"].decode(String.self) }
                }
            }
            // Looked at after the database said it is sealed: a coordinator that sealed it made
            // its key file first.
            if sealed != nil, !FileManager.default.fileExists(atPath: keyFile) {
                throw StateStoreError(
                    .schema,
                    "the PostgreSQL state \(url) is sealed with a key, and there is no key file \(keyFile): copy state.key from a coordinator that uses this database, and name it with --state-key or CONDUCTOR_STATE_KEY")
            }
            let seal = try StateSeal(keyFile: keyFile)
            let store = PostgresStateStore(url: url, options: options, seal: seal, connections: connections, logger: logger, fence: fence)
            var check = sealed
            if check == nil {
                // First use. Another coordinator may seal it at the same moment: the first
                // check stored wins, and a store whose key is not that one stops below.
                let mine = try seal.seal(Self.sealCheck)
                // Not fenced: a standby opening a fresh database seals it too.
                check = try await store.write(fenced: false) { session in
                    try await session.execute("INSERT INTO seal_check (id, sealed) VALUES (1, \(mine)) ON CONFLICT (id) DO NOTHING")
                    return try await session.first("SELECT sealed FROM seal_check WHERE id = 1")?["sealed"].decode(String.self)
                }
            }
            guard let check, (try? seal.open(check)) == Self.sealCheck else {
                throw StateStoreError(
                    .schema, "the key \(keyFile) is not the one the PostgreSQL state \(url) was sealed with: use the state.key of a coordinator that uses this database")
            }
            return store
        } catch {
            await connections.close()
            throw error
        }
    }

    static let sealCheck = "conductor-state-key"

    private init(
        url: PostgresStateURL, options: StateStoreOptions, seal: StateSeal, connections: PostgresConnections, logger: Logger,
        fence: (any PostgresWriteFence)?
    ) {
        self.url = url
        self.options = options
        self.seal = seal
        self.connections = connections
        self.logger = logger
        self.fence = fence
    }

    /// Closes the connections; the store is unusable afterwards.
    public func close() async {
        await self.connections.close()
    }

    /// The schema versions applied, in order (for tests and `status --verbose`).
    public func appliedMigrations() async throws -> [String] {
        try await self.read { session in
            try await session.rows("SELECT name FROM schema_version ORDER BY version").map { try $0["name"].decode(String.self) }
        }
    }

    // MARK: - Transactions

    /// The one way anything is written: a transaction holding the writers' advisory lock, in
    /// which the `fence` (when set) runs before `body`. A refusal thrown by `body` rolls back
    /// everything, its audit entry included. `flushed: false` (lock holders, signals) commits
    /// without waiting for the WAL flush, as SQLite's `synchronous = NORMAL` does for them:
    /// visible to everyone at once, possibly lost if the server itself crashes.
    ///
    /// `fenced: false` is for the leadership lease (`+Leadership`: a standby campaigns through
    /// it) and the seal check made at open: no writers' lock, no fence.
    func write<T: Sendable>(flushed: Bool = true, fenced: Bool = true, _ body: (PostgresSession) async throws -> T) async throws -> T {
        try await self.connections.withConnection { connection in
            let session = PostgresSession(connection: connection, logger: self.logger)
            return try await Self.transaction(session, url: self.url) { session in
                if !flushed { try await session.execute("SET LOCAL synchronous_commit = off") }
                if fenced {
                    try await session.execute("SELECT pg_advisory_xact_lock(\(PostgresSchema.writerLock))")
                    if let fence = self.fence { try await fence.check(session.connection, logger: session.logger) }
                }
                return try await body(session)
            }
        }
    }

    /// A consistent snapshot for reads of several statements.
    func read<T: Sendable>(_ body: (PostgresSession) async throws -> T) async throws -> T {
        try await self.connections.withConnection { connection in
            let session = PostgresSession(connection: connection, logger: self.logger)
            return try await Self.transaction(session, url: self.url, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
        }
    }

    private static func transaction<T>(
        _ session: PostgresSession, url: PostgresStateURL, begin: PostgresQuery = "BEGIN", _ body: (PostgresSession) async throws -> T
    ) async throws -> T {
        do {
            try await session.execute(begin)
            let result = try await body(session)
            try await session.execute("COMMIT")
            return result
        } catch {
            do {
                try await session.execute("ROLLBACK")
            } catch {
                // A connection that cannot roll back is not lent again half in a transaction.
                try? await session.connection.close()
            }
            throw Self.stateError(error, url: url)
        }
    }

    /// Store errors pass as they are; the server's errors become one line with its message.
    static func stateError(_ error: any Error, url: PostgresStateURL) -> any Error {
        guard let psql = error as? PSQLError else { return error }
        if let message = psql.serverInfo?[.message] {
            let state = psql.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return StateStoreError(.schema, "the PostgreSQL state \(url): \(message)\(state)")
        }
        return PostgresConnections.explain(psql, url: url)
    }

    /// Milliseconds, as SQLite keeps them, so both stores return the same times.
    var now: Date {
        Date(timeIntervalSince1970: (self.options.clock().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    // MARK: - Shared steps (inside a transaction)

    func ensureDeployment(_ session: PostgresSession, _ name: String, _ environment: String, _ actor: AuditActor) async throws
        -> DeploymentRecord
    {
        if let existing = try await Self.fetchDeployment(session, name, environment) { return existing }
        let now = self.now
        let row = try await session.first(
            """
            INSERT INTO deployment (name, environment, status, created_at, updated_at)
            VALUES (\(name), \(environment), 'recorded', \(now), \(now)) RETURNING id
            """)
        guard let id = try row?["id"].decode(Int64.self) else { throw StateStoreError(.schema, "no id for deployment \(name)") }
        try await self.audit(session, actor, "deployment.record", "deployment:\(name)@\(environment)", .succeeded, name, environment, detail: nil)
        return DeploymentRecord(
            id: id, name: name, environment: environment, status: .recorded, failureReason: nil, createdAt: now, updatedAt: now)
    }

    @discardableResult
    func setStatus(
        _ session: PostgresSession, _ deployment: DeploymentRecord, _ status: DeploymentStatus, reason: String?, generation: Int?,
        actor: AuditActor
    ) async throws -> DeploymentRecord {
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
        next.failureReason = status == .failed ? reason : nil
        if next == deployment { return deployment }
        next.updatedAt = self.now
        try await session.execute(
            "UPDATE deployment SET status = \(status.rawValue), failure_reason = \(next.failureReason), updated_at = \(next.updatedAt) WHERE id = \(deployment.id)")
        var detail: [String: MeshValue] = ["from": .string(deployment.status.rawValue), "to": .string(status.rawValue)]
        if let reason { detail["reason"] = .string(reason) }
        try await self.audit(
            session, actor, "deployment.status", "deployment:\(deployment.name)@\(deployment.environment)",
            status == .failed ? .failed : .succeeded, deployment.name, deployment.environment, detail: .map(detail))
        if status == .failed, let reason {
            var number = generation
            if number == nil {
                number = try await session.first(
                    "SELECT MAX(number) AS number FROM generation WHERE deployment_id = \(deployment.id) AND status IN ('pending', 'failed')"
                )?["number"].decode(Int?.self)
            }
            try await session.execute(
                "INSERT INTO failed_deployment (deployment_id, generation, reason, failed_at) VALUES (\(deployment.id), \(number), \(reason), \(next.updatedAt))")
            let limit = max(self.options.failedHistoryLimit, 0)
            try await session.execute(
                """
                DELETE FROM failed_deployment WHERE deployment_id = \(deployment.id) AND id NOT IN (
                    SELECT id FROM failed_deployment WHERE deployment_id = \(deployment.id) ORDER BY id DESC LIMIT \(limit))
                """)
        }
        return next
    }

    /// Appends one audit entry inside the caller's transaction.
    func audit(
        _ session: PostgresSession, _ actor: AuditActor, _ action: String, _ subject: String, _ outcome: AuditOutcome,
        _ deployment: String?, _ environment: String?, detail: MeshValue?
    ) async throws {
        let json = try detail.map(JSONText.encode)
        try await session.execute(
            """
            INSERT INTO audit (at, actor, action, subject, outcome, deployment, environment, detail)
            VALUES (\(self.now), \(actor.description), \(action), \(subject), \(outcome.rawValue), \(deployment), \(environment), \(json)::jsonb)
            """)
    }

    func fetchGenerationAndOwner(_ session: PostgresSession, _ generationID: Int64) async throws -> (GenerationRecord, DeploymentRecord) {
        guard let generation = try await Self.fetchGenerations(session, "SELECT * FROM generation WHERE id = \(generationID)").first else {
            throw StateStoreError(.notFound, "no generation with id \(generationID)")
        }
        return (generation, try await self.owner(session, generationID: generationID))
    }

    func owner(_ session: PostgresSession, generationID: Int64) async throws -> DeploymentRecord {
        guard let row = try await session.first(
            "SELECT d.* FROM deployment d JOIN generation g ON g.deployment_id = d.id WHERE g.id = \(generationID)")
        else { throw StateStoreError(.notFound, "no generation with id \(generationID)") }
        return try Self.deployment(row)
    }
}
