import Foundation
import ProcessSupport
import Testing

@testable import Conductor

/// `fwd` right after a `kill -9` of a launch whose parent has not reaped it yet: the dead
/// holder is a zombie, which `kill(pid, 0)` still finds. Its launch lock is free at once.
@Suite struct ZombieHolderTests {
    @Test func aKilledHolderNotYetReapedIsDeadAndItsLaunchLockIsFree() async throws {
        let pid = try ChildProcess.spawn(SpawnRequest(executable: "/bin/sleep", arguments: ["60"], stdin: .null))
        kill(pid, SIGKILL)
        // Unreaped on purpose: wait until the kernel shows it as a zombie.
        var zombie = false
        for _ in 0..<200 where !zombie {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            zombie = stat.contains(") Z")
            if !zombie { try await Task.sleep(for: .milliseconds(10)) }
        }
        defer { _ = ChildProcess.poll(pid) }
        try #require(zombie)
        #expect(kill(pid, 0) == 0, "a zombie still answers kill(pid, 0)")
        #expect(!StateStoreOptions.processExists(pid))

        let directory = try StateTestDirectory()
        let store = try SQLiteStateStore(path: directory.databasePath)
        let dead = LockHolder(id: "killed-launch", host: ProcessInfo.processInfo.hostName, pid: pid)
        _ = try await store.acquireLaunchLock(deployment: "shop", environment: "prod", holder: dead, lease: .seconds(300), actor: stateTestActor)
        let next = try await store.acquireLaunchLock(
            deployment: "shop", environment: "prod", holder: .thisProcess(id: "fwd"), lease: .seconds(30), actor: stateTestActor)
        #expect(next.holderID == "fwd")
        try store.close()
    }
}
