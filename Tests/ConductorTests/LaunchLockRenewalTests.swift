import AMQPClient
import Foundation
import Testing

@testable import Conductor

/// The launch lock is held for as long as a launch runs (renewed every third of its
/// lease), released at the end, and a launch that finds it taken over stops at once.
@Suite("Launch lock: renewal while a launch runs")
struct LaunchLockRenewalTests {
    static func launcher(_ store: SQLiteStateStore, _ directory: StateTestDirectory) throws -> Launcher {
        let options = LaunchOptions(
            stateDirectory: directory.url.path, console: try AMQPConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:1/%2F"),
            agentBrokerURL: "amqp://guest:guest@127.0.0.1:1/%2F", actor: stateTestActor)
        return Launcher(store: store, providers: [], options: options)
    }

    @Test func aLongLaunchKeepsItsLockPastTheLease() async throws {
        let directory = try StateTestDirectory()
        let store = try SQLiteStateStore(path: directory.databasePath)
        let other = try SQLiteStateStore(path: directory.databasePath)
        let launcher = try Self.launcher(store, directory)
        let attempts = StateTestCounter()

        // A 6 s lease (renewed every 2 s); the launch takes 12 s. Without renewal the lease
        // would run out twice over and the other holder would get it. (A 2 s lease lapsed on a
        // machine busy with the whole suite, renewals and all.)
        let value = try await launcher.withLaunchLock(deployment: "shop", environment: "prod", lease: .seconds(6)) {
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(4000))
                await _ = expectStateError(.lockHeld) {
                    _ = try await other.acquireLaunchLock(
                        deployment: "shop", environment: "prod", holder: .thisProcess(id: "other"), lease: .seconds(5), actor: stateTestActor)
                }
                attempts.increment()
            }
            return 42
        }
        #expect(value == 42)
        #expect(attempts.value == 3)
        // Released at the end: the other holder gets it now, with a larger token.
        let next = try await other.acquireLaunchLock(
            deployment: "shop", environment: "prod", holder: .thisProcess(id: "other"), lease: .seconds(5), actor: stateTestActor)
        #expect(next.fencingToken == 2)
        try store.close()
        try other.close()
    }

    @Test func aLaunchWhoseLockIsTakenOverStops() async throws {
        let directory = try StateTestDirectory()
        let store = try SQLiteStateStore(path: directory.databasePath)
        // This one believes every holder's process is dead, so it takes the lock at once,
        // as a coordinator on a host that lost sight of ours would after the lease.
        var thief = StateStoreOptions()
        thief.isProcessAlive = { _ in false }
        let other = try SQLiteStateStore(path: directory.databasePath, options: thief)
        let launcher = try Self.launcher(store, directory)
        let finished = StateTestCounter()

        let started = ContinuousClock.now
        let error = await expectStateError(.lockLost) {
            _ = try await launcher.withLaunchLock(deployment: "shop", environment: "prod", lease: .seconds(1)) {
                _ = try await other.acquireLaunchLock(
                    deployment: "shop", environment: "prod", holder: .thisProcess(id: "thief"), lease: .seconds(30), actor: stateTestActor)
                try await Task.sleep(for: .seconds(20))
                finished.increment()
            }
        }
        #expect(error != nil)
        #expect(finished.value == 0, "the launch went on after losing its lock")
        // The next renewal is due 1/3 s in; the bound leaves room for a loaded machine.
        #expect(started.duration(to: .now) < .seconds(10), "noticed at the next renewal, not at the end")
        #expect(try await store.launchLock(deployment: "shop", environment: "prod")?.holderID == "thief")
        try store.close()
        try other.close()
    }
}
