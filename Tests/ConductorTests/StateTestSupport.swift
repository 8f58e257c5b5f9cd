import Foundation
import GRDB
import Mesh
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
