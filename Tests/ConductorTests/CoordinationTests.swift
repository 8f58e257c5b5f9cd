import AMQPClient
import Agent
import Conductor
import Foundation
import Mesh
import MeshClient
import Testing

/// The coordinator end to end on a real bus: locks, leases, owners' connections, restart,
/// signal/wait. Each runs on the embedded broker and on RabbitMQ when it is configured.
@Suite(.timeLimit(.minutes(1)))
struct CoordinationTests {
    @Test(arguments: LaunchBusKind.all) func aLockIsExclusiveAndHandedToTheWaiterOnRelease(bus: LaunchBusKind) async throws {
        try await CoordinationHarness.with(bus) { harness in
            try await harness.withCoordinator { _ in
                let first = try await harness.client()
                let second = try await harness.client()
                // Leases long enough that a loaded machine (CI ran this beside launches and
                // the lock churn) cannot let them lapse before the release it tests.
                let grant = try await first.acquire(lock: "db", ttl: .seconds(40), wait: .zero, holder: "first")
                // Busy and not willing to wait: refused at once, naming the holder.
                do {
                    _ = try await second.acquire(lock: "db", ttl: .seconds(40), wait: .zero, holder: "second")
                    Issue.record("a second holder got the lock")
                } catch let error as CoordinatorCallError {
                    #expect(error.exception?.code == .timeout)
                    #expect(error.message.contains("first (token \(grant.token)"), "\(error.message)")
                }
                async let waited = second.acquire(lock: "db", ttl: .seconds(40), wait: .seconds(40), holder: "second")
                #expect(try await eventually { try await first.status(lock: "db").waiters == 1 })
                #expect(try await first.release(grant).held)
                let next = try await waited
                #expect(next.token > grant.token)
                // The old token is no longer good for anything.
                #expect(try await first.renew(grant).held == false)
                #expect(try await second.renew(next).held)
                await first.close()
                await second.close()
            }
        }
    }

    /// The liveness check (passive declare: 405 alive, 404 gone) works on this broker:
    /// a holder whose connection closes loses the lock long before its lease ends.
    @Test(arguments: LaunchBusKind.all) func aHolderWhoseConnectionDropsLosesTheLock(bus: LaunchBusKind) async throws {
        try await CoordinationHarness.with(bus) { harness in
            try await harness.withCoordinator(ownerCheck: .milliseconds(100)) { _ in
                let doomed = try await harness.client()
                let waiter = try await harness.client()
                let grant = try await doomed.acquire(lock: "job", ttl: .seconds(60), wait: .zero, holder: "doomed")
                // Alive holders keep it across several checks.
                try await Task.sleep(for: .milliseconds(400))
                #expect(try await waiter.status(lock: "job").holders.map(\.token) == [grant.token])
                let started = ContinuousClock.now
                async let next = waiter.acquire(lock: "job", ttl: .seconds(60), wait: .seconds(20), holder: "waiter")
                try await Task.sleep(for: .milliseconds(50))
                await doomed.close()
                let handed = try await next
                #expect(handed.token > grant.token)
                #expect(ContinuousClock.now - started < .seconds(10), "released by the owner check, not by the 60 s lease")
                await waiter.close()
            }
        }
    }

    /// Leases on a manual clock: no sleeping, so a loaded machine cannot make it flaky.
    @Test func aLeaseThatIsNotRenewedRunsOutAndARenewedOneDoesNot() async throws {
        try await CoordinationHarness.with(.embedded) { harness in
            let time = ManualClock()
            try await harness.withCoordinator(clock: time.clock) { _ in
                let client = try await harness.client()
                let renewed = try await client.acquire(lock: "a", ttl: .seconds(1), wait: .zero, holder: "renewer")
                let lapsed = try await client.acquire(lock: "b", ttl: .milliseconds(300), wait: .zero, holder: "sleeper")
                time.advance(by: 250)
                #expect(try await client.renew(renewed).held)
                time.advance(by: 250)
                // b's lease (300 ms) is over: the next tick takes it away.
                #expect(try await eventually { try await client.status(lock: "b").holders.isEmpty })
                #expect(try await client.renew(lapsed).held == false)
                time.advance(by: 700)
                // a is past its first lease (1000 ms) and still held: it was renewed at 250.
                #expect(try await client.renew(renewed).held)
                #expect(try await client.status(lock: "a").holders.map(\.token) == [renewed.token])
                time.advance(by: 1001)
                #expect(try await eventually { try await client.status(lock: "a").holders.isEmpty })
                await client.close()
            }
        }
    }

    @Test(arguments: LaunchBusKind.all) func aSemaphoreAdmitsItsLimit(bus: LaunchBusKind) async throws {
        try await CoordinationHarness.with(bus) { harness in
            try await harness.withCoordinator { _ in
                let client = try await harness.client()
                var tokens: [Int64] = []
                for index in 0..<3 {
                    tokens.append(try await client.acquire(lock: "pool", limit: 3, ttl: .seconds(10), wait: .zero, holder: "h\(index)").token)
                }
                #expect(tokens == tokens.sorted() && Set(tokens).count == 3)
                await #expect(throws: CoordinatorCallError.self) {
                    _ = try await client.acquire(lock: "pool", limit: 3, ttl: .seconds(10), wait: .zero, holder: "h4")
                }
                do {
                    _ = try await client.acquire(lock: "pool", limit: 2, ttl: .seconds(10), wait: .zero, holder: "other")
                    Issue.record("a different limit was accepted")
                } catch let error as CoordinatorCallError {
                    #expect(error.exception?.code == .conflict)
                }
                await client.close()
            }
        }
    }

    @Test func badRequestsGetClearErrorsAndNoCoordinatorIsSaidPlainly() async throws {
        try await CoordinationHarness.with(.embedded) { harness in
            let lonely = try await harness.client()
            do {
                _ = try await lonely.status(lock: "x", timeout: .seconds(5))
                Issue.record("answered without a coordinator")
            } catch let error as CoordinatorCallError {
                #expect(error.code == .noCoordinator, "\(error)")
            }
            await lonely.close()
            try await harness.withCoordinator { _ in
                let client = try await harness.client()
                for (arguments, expected) in [
                    (["lock": MeshValue.string("bad name!"), "ttl_ms": .int(1000), "wait_ms": .int(0), "holder": .string("x")], "may only hold"),
                    (["lock": .string("ok"), "ttl_ms": .int(1), "wait_ms": .int(0), "holder": .string("x")], "ttl must be"),
                    (["lock": .string("ok")], "ttl_ms"),
                ] {
                    do {
                        _ = try await client.call(Coordinator.Method.lockAcquire, arguments: arguments, timeout: .seconds(5))
                        Issue.record("accepted \(arguments)")
                    } catch let error as CoordinatorCallError {
                        #expect(error.exception?.code == .invalidRequest)
                        #expect(error.message.contains(expected), "\(error.message)")
                    }
                }
                do {
                    _ = try await client.call("no_such_method", arguments: [:], timeout: .seconds(5))
                } catch let error as CoordinatorCallError {
                    #expect(error.exception?.code == .notFound)
                    #expect(error.message.contains("lock_acquire"))
                }
                await client.close()
            }
        }
    }

    @Test func aSecondCoordinatorForTheSameScopeIsRefused() async throws {
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator { _ in
                let second = try CoordinatorService(broker: harness.configuration, scope: harness.scope, logger: CoordinationHarness.logger)
                await #expect(throws: CoordinationError.self) { try await second.run() }
            }
        }
    }

    @Test(arguments: LaunchBusKind.all) func heldLocksAndTokensSurviveACoordinatorRestart(bus: LaunchBusKind) async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await CoordinationHarness.with(bus) { harness in
            let path = directory + "/state.sqlite"
            let before = try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                var last: LockGrant?
                for _ in 0..<5 {
                    let grant = try await client.acquire(lock: "cycle", ttl: .seconds(30), wait: .zero, holder: "cycler")
                    _ = try await client.release(grant)
                    last = grant
                }
                // Lease-only: it outlives this client's connection and the coordinator.
                let held = try await client.acquire(lock: "kept", ttl: .seconds(30), wait: .zero, holder: "recipe", owned: false)
                await client.close()
                return (held, try #require(last))
            }
            let after = try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                let status = try await client.status(lock: "kept")
                #expect(status.holders.map(\.token) == [before.0.token])
                #expect(status.holders.first?.holder == "recipe")
                await #expect(throws: CoordinatorCallError.self) {
                    _ = try await client.acquire(lock: "kept", ttl: .seconds(5), wait: .zero, holder: "thief")
                }
                let next = try await client.acquire(lock: "cycle", ttl: .seconds(5), wait: .zero, holder: "cycler")
                #expect(try await client.release(before.0).held)
                await client.close()
                return next
            }
            #expect(after.token > before.0.token && after.token > before.1.token)
        }
    }

    @Test(arguments: LaunchBusKind.all) func eventsAreLatchedScopedAndCountedAndATimeoutNamesWhoDidNotSignal(bus: LaunchBusKind) async throws {
        try await CoordinationHarness.with(bus) { harness in
            let store = InMemoryCoordinationStore(expectedNodes: ["shop": ["db-1", "web-1", "web-2"]])
            try await harness.withCoordinator(store: store) { _ in
                let client = try await harness.client()
                // Latched: the signal comes first, the wait still sees it, with its data.
                _ = try await client.signal(SignalRequest(event: "db-ready", scope: "shop", node: "db-1", data: .map(["port": .int(5432)])))
                let latched = try await client.wait(WaitRequest(event: "db-ready", scope: "shop", timeoutMilliseconds: 1000))
                #expect(latched.satisfied && latched.signals.first?.data == .map(["port": .int(5432)]))
                // Scoped: another deployment (or global) does not see it.
                let elsewhere = try await client.wait(WaitRequest(event: "db-ready", scope: "global", timeoutMilliseconds: 0))
                #expect(!elsewhere.satisfied)

                // A barrier of 3 released by the third distinct node, not by a repeat.
                async let barrier = client.wait(WaitRequest(event: "warm", scope: "shop", count: 3, timeoutMilliseconds: 20_000))
                for node in ["db-1", "web-1", "web-1", "web-2"] {
                    try await Task.sleep(for: .milliseconds(30))
                    _ = try await client.signal(SignalRequest(event: "warm", scope: "shop", node: node))
                }
                let released = try await barrier
                #expect(released.satisfied && Set(released.signals.map(\.node)) == ["db-1", "web-1", "web-2"])

                // Timeout: not satisfied, names who signalled and who did not.
                _ = try await client.signal(SignalRequest(event: "migrated", scope: "shop", node: "db-1"))
                let started = ContinuousClock.now
                let timedOut = try await client.wait(WaitRequest(event: "migrated", scope: "shop", count: 3, timeoutMilliseconds: 300))
                #expect(ContinuousClock.now - started >= .milliseconds(300))
                #expect(!timedOut.satisfied)
                #expect(timedOut.signals.map(\.node) == ["db-1"])
                #expect(timedOut.missing == ["web-1", "web-2"])
                await client.close()
            }
        }
    }

    @Test func stoppingAnswersWaitingAcquiresAndWaitsWithAnErrorNotATimeout() async throws {
        try await CoordinationHarness.with(.embedded) { harness in
            let client = try await harness.client()
            let started = ContinuousClock.now
            let (lock, wait) = try await harness.withCoordinator { _ in
                _ = try await client.acquire(lock: "busy", ttl: .seconds(60), wait: .zero, holder: "holder")
                let lock = Task { () -> Result<LockGrant, CoordinatorCallError> in
                    do { return .success(try await client.acquire(lock: "busy", ttl: .seconds(60), wait: .seconds(60), holder: "waiter")) } catch let error as CoordinatorCallError { return .failure(error) } catch { return .failure(CoordinatorCallError(.bus, "\(error)")) }
                }
                let wait = Task { () -> Result<EventState, CoordinatorCallError> in
                    do { return .success(try await client.wait(WaitRequest(event: "never", scope: "global", timeoutMilliseconds: 60_000))) } catch let error as CoordinatorCallError { return .failure(error) } catch { return .failure(CoordinatorCallError(.bus, "\(error)")) }
                }
                #expect(try await eventually { try await client.status(lock: "busy").waiters == 1 })
                try await Task.sleep(for: .milliseconds(100))
                return (lock, wait)
            }
            // The coordinator has stopped: both calls ended with 410, long before their 60 s.
            #expect(ContinuousClock.now - started < .seconds(20))
            guard case .failure(let lockError) = await lock.value, case .failure(let waitError) = await wait.value else {
                Issue.record("a call succeeded although the coordinator stopped")
                return
            }
            #expect(lockError.exception?.code == .gone)
            #expect(waitError.exception?.code == .gone)
            await client.close()
        }
    }

    @Test func signalsSurviveARestart() async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await CoordinationHarness.with(.embedded) { harness in
            let path = directory + "/state.sqlite"
            try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                _ = try await client.signal(SignalRequest(event: "done", scope: "global", node: "n1", data: .string("v1")))
                await client.close()
            }
            try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                let state = try await client.wait(WaitRequest(event: "done", scope: "global", timeoutMilliseconds: 0))
                #expect(state.satisfied && state.signals.first?.data == .string("v1"))
                await client.close()
            }
        }
    }
}
