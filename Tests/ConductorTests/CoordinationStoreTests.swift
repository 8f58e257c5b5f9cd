import Agent
import Foundation
import GRDB
import Mesh
import Testing

@testable import Conductor

/// What the SQLite state file holds while the coordinator runs, read through a separate
/// connection as another process (or the coordinator after a crash) would see it.
@Suite(.timeLimit(.minutes(1)))
struct CoordinationStoreTests {
    struct Row: Hashable, CustomStringConvertible {
        var lock: String
        var token: Int64
        var description: String { "\(self.lock)#\(self.token)" }
    }

    static func holderRows(_ path: String) throws -> Set<Row> {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            Set(try GRDB.Row.fetchAll(db, sql: "SELECT lock_name, token FROM lock_holder").map { Row(lock: $0["lock_name"], token: $0["token"]) })
        }
    }

    /// A grant is answered only once its holder row is committed: a coordinator killed right
    /// after answering still finds the holder when it restarts.
    @Test func aGrantIsInTheFileBeforeItIsAnswered() async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/state.sqlite"
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                for round in 0..<20 {
                    let grant = try await client.acquire(lock: "file-\(round % 3)", ttl: .seconds(30), wait: .zero, holder: "checker")
                    #expect(try Self.holderRows(path).contains(Row(lock: grant.lock, token: grant.token)), "round \(round)")
                    _ = try await client.release(grant)
                }
                await client.close()
            }
        }
    }

    /// The same on PostgreSQL: each grant's holder row is committed, seen from another
    /// connection, before the grant is answered; a release's delete follows with the next
    /// grant or tick; the tokens reserved survive a new store on the same database.
    @Test(arguments: StoreKind.available.filter { $0 == .postgres }) func aGrantIsInTheDatabaseBeforeItIsAnswered(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open()
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator(store: store) { _ in
                let client = try await harness.client()
                for round in 0..<10 {
                    let grant = try await client.acquire(lock: "db-\(round % 3)", ttl: .seconds(600), wait: .zero, holder: "checker")
                    #expect(
                        try await bed.count("SELECT COUNT(*) FROM lock_holder WHERE lock_name = '\(grant.lock)' AND token = \(grant.token)") == 1,
                        "round \(round)")
                    _ = try await client.release(grant)
                }
                #expect(try await eventually(timeout: .seconds(10)) { try await bed.count("SELECT COUNT(*) FROM lock_holder") == 0 })
                await client.close()
            }
        }
        try await bed.close(store)
        let again = try await bed.open()
        // The first grant reserved a block of tokens, committed before any was issued.
        #expect(try await again.loadCoordination().reservedThrough == LockStateMachine.reservationBlock)
        try await bed.close(again)
        await bed.dispose()
    }

    /// A release is stored with the next grant's transaction, or at the coordinator's next
    /// tick when no grant follows: the file never keeps a released holder for long, and
    /// never loses a held one.
    @Test func releasesAreStoredWithTheNextGrantOrAtTheNextTick() async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/state.sqlite"
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                // Leases far longer than the test: a CI machine running the whole target at once
                // took 58 s here, and a lapsed "kept" is not what this is about.
                let kept = try await client.acquire(lock: "kept", ttl: .seconds(600), wait: .zero, holder: "long", owned: false)
                for _ in 0..<10 {
                    let first = try await client.acquire(lock: "a", ttl: .seconds(600), wait: .zero, holder: "cycler")
                    _ = try await client.release(first)
                    let second = try await client.acquire(lock: "b", ttl: .seconds(600), wait: .zero, holder: "cycler")
                    // Exactly the holders: the release of "a" went out with the grant of "b".
                    #expect(try Self.holderRows(path) == [Row(lock: "kept", token: kept.token), Row(lock: "b", token: second.token)])
                    _ = try await client.release(second)
                }
                // No grant follows the last release: the tick stores it.
                #expect(try await eventually(timeout: .seconds(10)) { try Self.holderRows(path) == [Row(lock: "kept", token: kept.token)] })
                _ = try await client.release(kept)
                #expect(try await eventually(timeout: .seconds(10)) { try Self.holderRows(path).isEmpty })
                await client.close()
            }
        }
    }

    /// The store on its own: removals handed to a save land in the same transaction.
    @Test func aSaveCarriesTheRemovalsItIsGiven() throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/state.sqlite"
        let store = try SQLiteStateStore(path: path)
        func holder(_ lock: String, _ token: Int64) -> LockHolderRecord {
            LockHolderRecord(lock: lock, token: token, limit: 1, owner: nil, holder: "h", ttlMilliseconds: 1000, expiresAt: 5000, keyHash: HolderKeyHash(presented: "key-\(token)"), acquiredBy: "u")
        }
        try store.saveLockHolder(holder("x", 1), removing: [])
        try store.saveLockHolder(holder("y", 2), removing: [])
        try store.saveLockHolder(holder("z", 3), removing: [LockHolderKey(lock: "x", token: 1), LockHolderKey(lock: "nothing", token: 9)])
        #expect(try Self.holderRows(path) == [Row(lock: "y", token: 2), Row(lock: "z", token: 3)])
        try store.removeLockHolders([LockHolderKey(lock: "y", token: 2)])
        #expect(try store.loadCoordination().holders.map(\.token) == [3])
        // A renewal (same lock and token) updates the lease in place.
        var renewed = holder("z", 3)
        renewed.expiresAt = 9000
        try store.saveLockHolder(renewed, removing: [])
        #expect(try store.loadCoordination().holders == [renewed])
    }

    /// The file keeps the SHA-256 of each holder's key, never the key, and who acquired it.
    @Test func theFileKeepsTheHashOfTheKeyNotTheKey() async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/state.sqlite"
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                let grant = try await client.acquire(lock: "secret", ttl: .seconds(30), wait: .zero, holder: "h", owned: false)
                let key = try #require(grant.holderKey)
                var configuration = Configuration()
                configuration.readonly = true
                let queue = try DatabaseQueue(path: path, configuration: configuration)
                let row = try queue.read { db in try GRDB.Row.fetchOne(db, sql: "SELECT key_hash, acquired_by FROM lock_holder WHERE lock_name = 'secret'") }
                try queue.close()
                #expect(row?["key_hash"] == HolderKeyHash(presented: key).hex)
                #expect(row?["acquired_by"] == "conductor")
                for file in [path, path + "-wal"] {
                    let bytes = FileManager.default.contents(atPath: file) ?? Data()
                    #expect(bytes.range(of: Data(key.utf8)) == nil, "\(file) holds the key itself")
                }
                _ = try await client.release(grant)
                await client.close()
            }
        }
    }

    /// A file from before holder keys: its holder rows get no key (NULL), so no key can
    /// release them; the lease, the owner check or a forced release still can.
    @Test func holdersFromBeforeKeysComeBackWithoutOne() throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/state.sqlite"
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteSchema.migrator.migrate(old, upTo: "v2-coordination")
            try old.write { db in
                try db.execute(
                    sql: "INSERT INTO lock_holder (lock_name, token, lock_limit, owner, holder, ttl_ms, expires_at_ms) VALUES ('old', 7, 1, NULL, 'h', 1000, 5000)")
            }
            try old.close()
        }
        let store = try SQLiteStateStore(path: path)
        #expect(try store.appliedMigrations().contains("v3-lock-holder-keys"))
        let holders = try store.loadCoordination().holders
        #expect(holders.map(\.token) == [7])
        #expect(holders.first?.keyHash == nil && holders.first?.acquiredBy == nil)
        try store.close()
    }
}
