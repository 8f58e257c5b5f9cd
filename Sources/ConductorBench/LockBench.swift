import AMQPClient
import Conductor
import Foundation
import Logging
import MeshClient

/// `conductor lock bench`: the client API's lock latency (process start not counted):
/// uncontended acquire+release round trips and handoffs to a waiting client, against an
/// in-process coordinator with a SQLite store (or in memory), on an embedded broker or a
/// given one. scripts/bench-lock.sh runs it.
public enum LockBench {
    public struct Settings: Sendable {
        public var broker: String?
        public var cycles: Int
        public var handoffs: Int
        /// Locks in memory instead of a SQLite state store (to see the store's share).
        public var memory: Bool

        public init(broker: String?, cycles: Int, handoffs: Int, memory: Bool) {
            self.broker = broker
            self.cycles = cycles
            self.handoffs = handoffs
            self.memory = memory
        }
    }

    public struct Result: Sendable {
        public var embeddedBroker: Bool
        /// Percentiles in milliseconds, in report order.
        public var milliseconds: [(String, Double)]
    }

    public static func run(_ settings: Settings) async throws -> Result {
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let (url, server) = try await benchBus(settings.broker, logger: logger)
        let directory = NSTemporaryDirectory() + "conductor-lock-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try AMQPConnectionConfiguration(url: url)
        let scope = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        let sqlite = settings.memory ? nil : try SQLiteStateStore(path: directory + "/state.sqlite")
        let coordinator = try CoordinatorService(broker: configuration, scope: scope, store: sqlite ?? InMemoryCoordinationStore(), logger: logger)
        let running = Task { try await coordinator.run() }
        try await coordinator.waitUntilReady()
        let first = try await CoordinatorClient.connect(configuration, scope: scope)
        let second = try await CoordinatorClient.connect(configuration, scope: scope)

        // Warm-up, then uncontended cycles.
        for _ in 0..<100 {
            let grant = try await first.acquire(lock: "bench", ttl: .seconds(30), wait: .zero, holder: "bench")
            _ = try await first.release(grant)
        }
        var cycleTimes: [Duration] = []
        for _ in 0..<settings.cycles {
            let started = ContinuousClock.now
            let grant = try await first.acquire(lock: "bench", ttl: .seconds(30), wait: .zero, holder: "bench")
            _ = try await first.release(grant)
            cycleTimes.append(ContinuousClock.now - started)
        }
        // Handoffs: the second client waits; the time from sending the release to the waiter's grant.
        var handoffTimes: [Duration] = []
        for _ in 0..<settings.handoffs {
            let held = try await first.acquire(lock: "handoff", ttl: .seconds(30), wait: .zero, holder: "holder")
            async let waited = second.acquire(lock: "handoff", ttl: .seconds(30), wait: .seconds(10), holder: "waiter")
            while try await first.status(lock: "handoff").waiters == 0 {}
            let released = ContinuousClock.now
            _ = try await first.release(held)
            let grant = try await waited
            handoffTimes.append(ContinuousClock.now - released)
            _ = try await second.release(grant)
        }
        await first.close()
        await second.close()
        running.cancel()
        _ = await running.result
        try? await server?.shutdown()

        // The store's share of a cycle: the grant's write (carrying the previous release's
        // delete, as the lock service does) timed alone, on the same file.
        var storeTimes: [Duration] = []
        if let sqlite {
            var previous: [LockHolderKey] = []
            for index in 0..<Int64(settings.cycles) {
                let holder = LockHolderRecord(
                    lock: "store-bench", token: 1_000_000_000 + index, limit: 1, owner: "bench", holder: "bench", ttlMilliseconds: 30_000,
                    expiresAt: Int64(Date().timeIntervalSince1970 * 1000) + 30_000, keyHash: HolderKey.random().hash, acquiredBy: "bench")
                let started = ContinuousClock.now
                try sqlite.saveLockHolder(holder, removing: previous)
                storeTimes.append(ContinuousClock.now - started)
                previous = [LockHolderKey(lock: holder.lock, token: holder.token)]
            }
        }

        func percentile(_ values: [Duration], _ p: Double) -> Double {
            let sorted = values.sorted()
            let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
            let (seconds, attoseconds) = sorted[index].components
            return Double(seconds) * 1000 + Double(attoseconds) / 1e15
        }
        var result: [(String, Double)] = [
            ("acquire_release_p50_ms", percentile(cycleTimes, 0.5)), ("acquire_release_p99_ms", percentile(cycleTimes, 0.99)),
            ("handoff_p50_ms", percentile(handoffTimes, 0.5)), ("handoff_p99_ms", percentile(handoffTimes, 0.99)),
        ]
        if !storeTimes.isEmpty {
            result += [("store_grant_write_p50_ms", percentile(storeTimes, 0.5)), ("store_grant_write_p99_ms", percentile(storeTimes, 0.99))]
        }
        return Result(embeddedBroker: server != nil, milliseconds: result)
    }
}
