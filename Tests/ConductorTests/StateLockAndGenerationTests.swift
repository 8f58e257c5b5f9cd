import Foundation
import Mesh
import Testing

@testable import Conductor

@Suite("State store: launch lock, generations, failures, roll-forward")
struct StateLockAndGenerationTests {
    let alice = LockHolder(id: "launch-alice", host: "test-host", pid: 1001)
    let bob = LockHolder(id: "launch-bob", host: "test-host", pid: 1002)

    @Test(arguments: StoreKind.available) func launchLockExcludesAnotherStoreOnTheSameFileUntilItExpires(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let clock = StateTestClock()
        // Two pools on one file: two coordinator processes, as far as SQLite can tell.
        let first = try await bed.open(stateTestOptions(clock: clock))
        let second = try await bed.open(stateTestOptions(clock: clock))

        let lease = try await first.acquireLaunchLock(
            deployment: "shop", environment: "prod", holder: alice, lease: .seconds(30), actor: stateTestActor)
        let refused = await expectStateError(.lockHeld) {
            _ = try await second.acquireLaunchLock(
                deployment: "shop", environment: "prod", holder: bob, lease: .seconds(30), actor: stateTestActor)
        }
        #expect(refused?.holder?.holderID == "launch-alice")
        #expect(refused?.message.contains("launch-alice") == true)
        #expect(refused?.message.contains("pid 1001") == true)
        // Another environment is another lock.
        _ = try await second.acquireLaunchLock(
            deployment: "shop", environment: "staging", holder: bob, lease: .seconds(30), actor: stateTestActor)

        clock.advance(by: 20)
        let renewed = try await first.renewLaunchLock(lease, for: .seconds(30))
        clock.advance(by: 20)  // 40 s after the grant, 20 s after the renewal: still held
        await _ = expectStateError(.lockHeld) {
            _ = try await second.acquireLaunchLock(
                deployment: "shop", environment: "prod", holder: bob, lease: .seconds(30), actor: stateTestActor)
        }

        clock.advance(by: 11)
        let stolen = try await second.acquireLaunchLock(
            deployment: "shop", environment: "prod", holder: bob, lease: .seconds(30), actor: stateTestActor)
        #expect(stolen.fencingToken > renewed.fencingToken)
        await _ = expectStateError(.lockLost) { _ = try await first.renewLaunchLock(renewed, for: .seconds(30)) }
        await _ = expectStateError(.lockLost) { try await first.releaseLaunchLock(renewed, actor: stateTestActor) }
        #expect(try await first.launchLock(deployment: "shop", environment: "prod")?.holderID == "launch-bob")

        try await second.releaseLaunchLock(stolen, actor: stateTestActor)
        #expect(try await first.launchLock(deployment: "shop", environment: "prod") == nil)
        let next = try await first.acquireLaunchLock(
            deployment: "shop", environment: "prod", holder: alice, lease: .seconds(30), actor: stateTestActor)
        #expect(next.fencingToken == stolen.fencingToken + 1)

        let trail = try await first.auditTrail(deployment: "shop", environment: "prod", limit: 50)
        #expect(trail.map(\.action) == ["lock.acquire", "lock.steal", "lock.acquire", "lock.release", "lock.acquire"])
        try await bed.close(first)
        try await bed.close(second)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func aDeadHolderOnThisHostLosesTheLockAtOnce(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let clock = StateTestClock()
        let deadPid: Int32 = 1001
        let options = stateTestOptions(clock: clock, alive: { $0 != deadPid })
        let first = try await bed.open(options)
        let second = try await bed.open(options)

        // Same pid on another host: we cannot tell whether it lives, so the lease stands.
        let remote = LockHolder(id: "remote", host: "other-host", pid: deadPid)
        _ = try await first.acquireLaunchLock(deployment: "a", environment: "prod", holder: remote, lease: .seconds(60), actor: stateTestActor)
        await _ = expectStateError(.lockHeld) {
            _ = try await second.acquireLaunchLock(deployment: "a", environment: "prod", holder: bob, lease: .seconds(60), actor: stateTestActor)
        }

        _ = try await first.acquireLaunchLock(deployment: "b", environment: "prod", holder: alice, lease: .seconds(60), actor: stateTestActor)
        let taken = try await second.acquireLaunchLock(
            deployment: "b", environment: "prod", holder: bob, lease: .seconds(60), actor: stateTestActor)
        #expect(taken.holderID == "launch-bob")
        let steal = try await second.auditTrail(deployment: "b", environment: "prod", limit: 10).first { $0.action == "lock.steal" }
        #expect(steal?.detail?[path: "reason"] == .string("holder process 1001 is gone"))
        try await bed.close(first)
        try await bed.close(second)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func racingAcquirersGetExactlyOneLease(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let clock = StateTestClock()
        var stores: [any CoordinatorStateStore] = []
        for _ in 0..<4 { stores.append(try await bed.open(stateTestOptions(clock: clock))) }
        let winners = await withTaskGroup(of: Bool.self) { group in
            for (index, store) in stores.enumerated() {
                group.addTask {
                    let holder = LockHolder(id: "racer-\(index)", host: "test-host", pid: Int32(2000 + index))
                    return (try? await store.acquireLaunchLock(
                        deployment: "shop", environment: "prod", holder: holder, lease: .seconds(30), actor: stateTestActor)) != nil
                }
            }
            var count = 0
            for await won in group where won { count += 1 }
            return count
        }
        #expect(winners == 1)
        for store in stores { try await bed.close(store) }
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func generationsAreNumberedAndActivatedAtomically(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
        func record(_ hash: String) async throws -> GenerationRecord {
            try await store.recordGeneration(
                deployment: "shop", environment: "prod", document: "doc \(hash)", documentHash: hash, actor: stateTestActor)
        }
        let one = try await record("A")
        #expect(one.number == 1 && one.status == .pending)
        #expect(try await record("A").id == one.id)
        let oldWeb = try await store.recordInstanceIntent(generationID: one.id, member: "web[0]", provider: "local", actor: stateTestActor)
        try await store.activateGeneration(one.id, actor: stateTestActor)
        #expect(try await record("A").id == one.id)

        let two = try await record("B")
        #expect(two.number == 2 && two.status == .pending)
        let activated = try await store.activateGeneration(two.id, actor: stateTestActor)
        #expect(activated.status == .active)
        var byNumber = Dictionary(uniqueKeysWithValues: try await store.generations(deployment: "shop", environment: "prod").map { ($0.number, $0) })
        #expect(byNumber[1]?.status == .old)
        #expect(byNumber[2]?.status == .active)

        // The old generation's instance is now roll-forward work: it must be terminated.
        let work = try #require(try await store.pendingWork(deployment: "shop", environment: "prod"))
        #expect(work.instancesToTerminate.map(\.id) == [oldWeb.id])
        #expect(work.generation?.number == 2)

        let three = try await record("C")
        let four = try await record("D")
        #expect(three.number == 3 && four.number == 4)
        byNumber = Dictionary(uniqueKeysWithValues: try await store.generations(deployment: "shop", environment: "prod").map { ($0.number, $0) })
        #expect(byNumber[3]?.status == .failed)
        #expect(byNumber[3]?.failureReason == "superseded by generation 4")
        await _ = expectStateError(.invalidTransition) { try await store.activateGeneration(one.id, actor: stateTestActor) }
        await _ = expectStateError(.invalidTransition) {
            _ = try await store.recordInstanceIntent(generationID: three.id, member: "web[0]", provider: "local", actor: stateTestActor)
        }
        // Generations of another environment count on their own.
        let staging = try await store.recordGeneration(
            deployment: "shop", environment: "staging", document: "d", documentHash: "B", actor: stateTestActor)
        #expect(staging.number == 1)
        try await bed.close(store)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func failedDeploymentsKeepTheirReasonInACappedHistory(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let clock = StateTestClock()
        let store = try await bed.open(stateTestOptions(clock: clock, failedHistoryLimit: 3))
        _ = try await store.ensureDeployment("shop", environment: "prod", actor: stateTestActor)
        await _ = expectStateError(.invalidTransition) {
            try await store.setDeploymentStatus("shop", environment: "prod", to: .failed, reason: nil, actor: stateTestActor)
        }
        for attempt in 1...4 {
            clock.advance(by: 1)
            try await store.setDeploymentStatus("shop", environment: "prod", to: .launching, reason: nil, actor: stateTestActor)
            try await store.setDeploymentStatus("shop", environment: "prod", to: .failed, reason: "attempt \(attempt): db[0] never answered", actor: stateTestActor)
        }
        let generation = try await store.recordGeneration(
            deployment: "shop", environment: "prod", document: "d", documentHash: "h", actor: stateTestActor)
        try await store.setDeploymentStatus("shop", environment: "prod", to: .launching, reason: nil, actor: stateTestActor)
        try await store.failGeneration(generation.id, reason: "web[1]: nginx exited 1", actor: stateTestActor)

        let failures = try await store.recentFailures(deployment: "shop", environment: "prod")
        #expect(failures.map(\.reason) == ["web[1]: nginx exited 1", "attempt 4: db[0] never answered", "attempt 3: db[0] never answered"])
        #expect(failures.first?.generation == 1)
        let deployment = try await store.deployment("shop", environment: "prod")
        #expect(deployment?.status == .failed)
        #expect(deployment?.failureReason == "web[1]: nginx exited 1")
        #expect(try await bed.count("SELECT COUNT(*) FROM failed_deployment") == 3)
        try await bed.close(store)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func aCrashMidLaunchLeavesExactlyTheUnfinishedWork(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let clock = StateTestClock()
        var ids: [String: UUID] = [:]
        var jobIDs: [String: String] = [:]
        do {
            let store = try await bed.open(stateTestOptions(clock: clock))
            let generation = try await store.recordGeneration(
                deployment: "shop", environment: "prod", document: "d", documentHash: "h", actor: stateTestActor)
            try await store.setDeploymentStatus("shop", environment: "prod", to: .launching, reason: nil, actor: stateTestActor)
            for member in ["db[0]", "web[0]", "web[1]", "lb[0]"] {
                ids[member] = try await store.recordInstanceIntent(
                    generationID: generation.id, member: member, provider: "local", actor: stateTestActor
                ).id
            }
            // db[0] is done; web[0] started with its job sent; web[1] was being started;
            // lb[0] was only recorded.
            for state in [InstanceState.starting, .started, .configuring, .configured] {
                try await store.transitionInstance(try #require(ids["db[0]"]), to: state, providerHandle: "100", address: "127.0.0.2", reason: nil, actor: stateTestActor)
            }
            let dbJob = try await store.recordJobIntent(instanceID: try #require(ids["db[0]"]), name: "mysql", payload: .null, actor: stateTestActor)
            try await store.transitionJob(dbJob.id, to: .sent, result: nil, actor: stateTestActor)
            try await store.transitionJob(dbJob.id, to: .succeeded, result: .map(["exit": .int(0)]), actor: stateTestActor)
            for state in [InstanceState.starting, .started, .configuring] {
                try await store.transitionInstance(try #require(ids["web[0]"]), to: state, providerHandle: "101", address: "127.0.0.3", reason: nil, actor: stateTestActor)
            }
            let webSent = try await store.recordJobIntent(instanceID: try #require(ids["web[0]"]), name: "nginx", payload: .null, actor: stateTestActor)
            try await store.transitionJob(webSent.id, to: .sent, result: nil, actor: stateTestActor)
            let webRecorded = try await store.recordJobIntent(instanceID: try #require(ids["web[0]"]), name: "app", payload: .null, actor: stateTestActor)
            jobIDs = ["nginx": webSent.id, "app": webRecorded.id]
            try await store.transitionInstance(try #require(ids["web[1]"]), to: .starting, providerHandle: "102", address: nil, reason: nil, actor: stateTestActor)
            try await bed.close(store)  // the coordinator dies here
        }

        let store = try await bed.open(stateTestOptions(clock: clock))
        let work = try #require(try await store.pendingWork(deployment: "shop", environment: "prod"))
        #expect(work.deployment.status == .launching)
        #expect(work.generation?.number == 1)
        #expect(work.instancesToStart.map(\.member) == ["lb[0]"])
        #expect(work.instancesStarting.map(\.member) == ["web[1]"])
        #expect(work.instancesStarting.first?.providerHandle == "102")
        #expect(work.instancesToConfigure.map(\.member) == ["web[0]"])
        #expect(work.jobsToSend.map(\.id) == [jobIDs["app"]])
        #expect(work.jobsAwaitingResult.map(\.id) == [jobIDs["nginx"]])
        #expect(work.instancesToTerminate.isEmpty)

        // `conductor fwd` replays the same intents: nothing is duplicated.
        let generation = try #require(work.generation)
        for member in ["db[0]", "web[0]", "web[1]", "lb[0]"] {
            let replayed = try await store.recordInstanceIntent(generationID: generation.id, member: member, provider: "local", actor: stateTestActor)
            #expect(replayed.id == ids[member])
        }
        let replayedJob = try await store.recordJobIntent(instanceID: try #require(ids["web[0]"]), name: "app", payload: .null, actor: stateTestActor)
        #expect(replayedJob.id == jobIDs["app"])
        #expect(try await bed.count("SELECT COUNT(*) FROM instance") == 4)
        #expect(try await bed.count("SELECT COUNT(*) FROM job") == 3)

        // Status shows the same picture, and survives a JSON round trip for `--json`.
        let report = try #require(try await store.status(deployment: "shop", environment: "prod"))
        #expect(report.pendingGeneration?.number == 1)
        #expect(report.activeGeneration == nil)
        #expect(report.instances.map(\.instance.member) == ["db[0]", "lb[0]", "web[0]", "web[1]"])
        #expect(report.instances.first { $0.instance.member == "web[0]" }?.jobs.count == 2)
        let decoded = try JSONDecoder().decode(DeploymentStatusReport.self, from: try JSONEncoder().encode(report))
        #expect(decoded == report)
        try await bed.close(store)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func statusNamesWhatFailedAndTerminationIsRollForwardWork(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
        let generation = try await store.recordGeneration(
            deployment: "shop", environment: "prod", document: "d", documentHash: "h", actor: stateTestActor)
        let db = try await store.recordInstanceIntent(generationID: generation.id, member: "db[0]", provider: "local", actor: stateTestActor)
        let web = try await store.recordInstanceIntent(generationID: generation.id, member: "web[0]", provider: "local", actor: stateTestActor)
        try await store.transitionInstance(db.id, to: .failed, providerHandle: nil, address: nil, reason: "mysqld exited 1", actor: stateTestActor)
        for state in [InstanceState.starting, .started, .configuring] {
            try await store.transitionInstance(web.id, to: state, providerHandle: "7", address: "127.0.0.3", reason: nil, actor: stateTestActor)
        }
        let job = try await store.recordJobIntent(instanceID: web.id, name: "nginx", payload: .null, actor: stateTestActor)
        try await store.transitionJob(job.id, to: .sent, result: nil, actor: stateTestActor)
        try await store.transitionJob(job.id, to: .failed, result: .map(["exit": .int(2)]), actor: stateTestActor)
        try await store.failGeneration(generation.id, reason: "db[0] failed", actor: stateTestActor)

        let reports = try await store.status()
        #expect(reports.count == 1)
        let report = try #require(reports.first)
        #expect(report.deployment.status == .failed)
        #expect(report.shownGeneration?.status == .failed)
        #expect(report.failures.contains("deployment: db[0] failed"))
        #expect(report.failures.contains("db[0]: mysqld exited 1"))
        #expect(report.failures.contains { $0.hasPrefix("web[0] job nginx:") && $0.contains("\"exit\":2") })

        try await store.setDeploymentStatus("shop", environment: "prod", to: .terminating, reason: nil, actor: stateTestActor)
        let work = try #require(try await store.pendingWork(deployment: "shop", environment: "prod"))
        #expect(Set(work.instancesToTerminate.map(\.member)) == ["db[0]", "web[0]"])
        #expect(work.instancesToStart.isEmpty && work.jobsToSend.isEmpty)
        try await bed.close(store)
        await bed.dispose()
    }
}
