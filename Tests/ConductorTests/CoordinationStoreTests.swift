import Agent
import Conductor
import Foundation
import GRDB
import Mesh
import Testing

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
                    _ = try await client.release(lock: grant.lock, token: grant.token)
                }
                await client.close()
            }
        }
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
                let kept = try await client.acquire(lock: "kept", ttl: .seconds(30), wait: .zero, holder: "long", owned: false)
                for _ in 0..<10 {
                    let first = try await client.acquire(lock: "a", ttl: .seconds(30), wait: .zero, holder: "cycler")
                    _ = try await client.release(lock: "a", token: first.token)
                    let second = try await client.acquire(lock: "b", ttl: .seconds(30), wait: .zero, holder: "cycler")
                    // Exactly the holders: the release of "a" went out with the grant of "b".
                    #expect(try Self.holderRows(path) == [Row(lock: "kept", token: kept.token), Row(lock: "b", token: second.token)])
                    _ = try await client.release(lock: "b", token: second.token)
                }
                // No grant follows the last release: the tick stores it.
                #expect(try await eventually(timeout: .seconds(3)) { try Self.holderRows(path) == [Row(lock: "kept", token: kept.token)] })
                _ = try await client.release(lock: "kept", token: kept.token)
                #expect(try await eventually(timeout: .seconds(3)) { try Self.holderRows(path).isEmpty })
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
            LockHolderRecord(lock: lock, token: token, limit: 1, owner: nil, holder: "h", ttlMilliseconds: 1000, expiresAt: 5000)
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
}
