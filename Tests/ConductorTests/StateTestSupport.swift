import Foundation
import GRDB
import Logging
import Mesh
import PostgresNIO
import Testing

@testable import Conductor

/// A temporary directory holding a real SQLite file, removed at the end of the test.
final class StateTestDirectory {
    let url: URL
    var databasePath: String { url.appendingPathComponent("state.sqlite").path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("conductor-state-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A clock the test moves by hand (millisecond steps: the store keeps milliseconds).
final class StateTestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_750_000_000)

    var now: Date { lock.withLock { current } }
    func advance(by seconds: TimeInterval) { lock.withLock { current += seconds } }
}

/// A counter shared with @Sendable closures.
final class StateTestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}

let stateTestActor = AuditActor(kind: .os, name: "tester")

func stateTestOptions(clock: StateTestClock, alive: @escaping @Sendable (Int32) -> Bool = { _ in true }, failedHistoryLimit: Int = 10)
    -> StateStoreOptions
{
    var options = StateStoreOptions()
    options.clock = { clock.now }
    options.isProcessAlive = alive
    options.hostName = "test-host"
    options.failedHistoryLimit = failedHistoryLimit
    return options
}

/// Counts rows with plain SQL on a separate connection, as an outside observer would.
func countStateRows(_ path: String, _ sql: String) throws -> Int {
    let queue = try DatabaseQueue(path: path)
    defer { try? queue.close() }
    return try queue.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
}

func expectStateError(
    _ code: StateStoreError.Code, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> StateStoreError? {
    do {
        try await body()
        Issue.record("expected a \(code) error, got none", sourceLocation: sourceLocation)
        return nil
    } catch let error as StateStoreError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a \(code) error, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The stores the state tests run against: SQLite always, PostgreSQL when
/// CONDUCTOR_POSTGRES_URL names a server (scripts/postgres.sh; its role may create databases).
enum StoreKind: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static var available: [StoreKind] { postgresAdminURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    static let postgresAdminURL: PostgresStateURL? = ProcessInfo.processInfo.environment["CONDUCTOR_POSTGRES_URL"]
        .flatMap { $0.isEmpty ? nil : try? PostgresStateURL(parsing: $0) }

    var testDescription: String { self.rawValue }
}

/// A fresh state for one test: a temporary directory (the SQLite file, the key), and for
/// PostgreSQL a database of its own, so tests run in parallel. `dispose()` drops it.
/// Unchecked Sendable: every property is a constant.
final class StateTestBed: @unchecked Sendable {
    let kind: StoreKind
    let directory: StateTestDirectory
    /// The test's own database (PostgreSQL only).
    let database: PostgresStateURL?

    var keyFile: String { self.directory.url.path + "/state.key" }

    init(_ kind: StoreKind) async throws {
        self.kind = kind
        self.directory = try StateTestDirectory()
        guard kind == .postgres else {
            self.database = nil
            return
        }
        guard let admin = StoreKind.postgresAdminURL else { throw StateStoreError(.schema, "CONDUCTOR_POSTGRES_URL is not set") }
        var database = admin
        database.database = "conductor_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await Self.withConnection(admin) { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database.database)"), logger: stateTestLogger)
        }
        self.database = database
    }

    /// The location `--state` would name.
    var location: StateLocation {
        if let database { return .postgres(database) }
        return .sqlite(path: self.directory.databasePath)
    }

    /// A store on this state (another one on the same state: another coordinator process).
    func open(_ options: StateStoreOptions = StateStoreOptions(), keyFile: String? = nil) async throws -> any CoordinatorStateStore {
        try await self.location.open(stateDirectory: self.directory.url.path, keyFile: keyFile ?? self.keyFile, options: options)
    }

    func close(_ store: any StateStore) async throws {
        if let sqlite = store as? SQLiteStateStore { try sqlite.close() }
        if let postgres = store as? PostgresStateStore { await postgres.close() }
    }

    /// One number from plain SQL, through a connection of its own, as an outside observer sees it.
    func count(_ sql: String) async throws -> Int {
        if let database {
            return try await Self.withConnection(database) { connection in
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: stateTestLogger).collect()
                return try rows.first?.makeRandomAccess()[0].decode(Int.self) ?? -1
            }
        }
        return try countStateRows(self.directory.databasePath, sql)
    }

    /// Runs plain SQL from outside the store (what a user with the database's password could).
    func execute(_ sql: String) async throws {
        if let database {
            try await Self.withConnection(database) { connection in
                _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: stateTestLogger).collect()
            }
            return
        }
        let queue = try DatabaseQueue(path: self.directory.databasePath)
        defer { try? queue.close() }
        try await queue.write { db in try db.execute(sql: sql) }
    }

    /// Drops the test's database.
    func dispose() async {
        guard let database, let admin = StoreKind.postgresAdminURL else { return }
        try? await Self.withConnection(admin) { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database.database) WITH (FORCE)"), logger: stateTestLogger)
        }
    }

    static func withConnection<T>(_ url: PostgresStateURL, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: stateTestLogger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

let stateTestLogger = Logger(label: "state-tests", factory: { _ in SwiftLogNoOpLogHandler() })
