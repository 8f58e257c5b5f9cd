import Conductor
import Mesh
import Testing

/// The lock table and the event board without I/O: one event, its expected actions.
struct CoordinationStateMachineTests {
    static func acquire(_ lock: String = "db", limit: Int = 1, ttl: Int64 = 1000, wait: Int64 = 5000, owner: String? = "q1", holder: String = "a") -> LockAcquireRequest {
        LockAcquireRequest(lock: lock, limit: limit, ttlMilliseconds: ttl, waitMilliseconds: wait, owner: owner, holder: holder)
    }

    static func reserved(_ machine: inout LockStateMachine, _ actions: [LockStateMachine.Action], now: Int64) -> [LockStateMachine.Action] {
        var result: [LockStateMachine.Action] = []
        for action in actions {
            if case .reserveTokens(let through) = action {
                result += machine.tokensReserved(through: through, now: now)
            } else {
                result.append(action)
            }
        }
        return result
    }

    /// A machine whose first token range is already reserved.
    static func primed() -> LockStateMachine {
        var machine = LockStateMachine()
        _ = machine.acquireRequested(Self.acquire("primer"), waiter: 999, now: 0)
        _ = machine.tokensReserved(through: LockStateMachine.reservationBlock, now: 0)
        _ = machine.releaseRequested(lock: "primer", token: 1, now: 0)
        return machine
    }

    @Test func aTokenIsReservedBeforeItIsIssuedAndTokensOnlyIncrease() {
        var machine = LockStateMachine()
        let first = machine.acquireRequested(Self.acquire(), waiter: 1, now: 0)
        #expect(first == [.reserveTokens(through: LockStateMachine.reservationBlock)])
        let granted = machine.tokensReserved(through: LockStateMachine.reservationBlock, now: 0)
        #expect(granted == [.grant(1, LockHolderRecord(lock: "db", token: 1, limit: 1, owner: "q1", holder: "a", ttlMilliseconds: 1000, expiresAt: 1000))])
        #expect(machine.acquireRequested(Self.acquire(holder: "b"), waiter: 2, now: 10).isEmpty)
        let handoff = machine.releaseRequested(lock: "db", token: 1, now: 20)
        #expect(handoff.count == 2)
        #expect(handoff.last == .grant(2, LockHolderRecord(lock: "db", token: 2, limit: 1, owner: "q1", holder: "b", ttlMilliseconds: 1000, expiresAt: 1020)))
    }

    @Test func waitersAreServedInArrivalOrder() {
        var machine = Self.primed()
        _ = machine.acquireRequested(Self.acquire(holder: "first"), waiter: 1, now: 0)
        for (index, name) in ["w2", "w3", "w4"].enumerated() {
            #expect(machine.acquireRequested(Self.acquire(holder: name), waiter: UInt64(index + 2), now: 1).isEmpty)
        }
        var order: [String] = []
        var token: Int64 = 2
        for _ in 0..<3 {
            for case .grant(_, let holder) in machine.releaseRequested(lock: "db", token: token, now: 5) {
                order.append(holder.holder)
                token = holder.token
            }
        }
        #expect(order == ["w2", "w3", "w4"])
    }

    @Test func aSemaphoreGrantsUpToItsLimitAndRefusesAnotherLimit() {
        var machine = Self.primed()
        let grants = (1...4).flatMap { machine.acquireRequested(Self.acquire(limit: 3, holder: "h\($0)"), waiter: UInt64($0), now: 0) }
        #expect(grants.count == 3)
        #expect(machine.status("db", now: 0).waiters == 1)
        #expect(machine.acquireRequested(Self.acquire(limit: 2), waiter: 9, now: 0) == [.refuse(9, ExceptionBody(code: .conflict, text: "lock 'db' is in use with limit 3, not 2"))])
    }

    @Test func anExpiredLeaseLosesTheLockAndTheNextWaiterGetsIt() {
        var machine = Self.primed()
        _ = machine.acquireRequested(Self.acquire(ttl: 500, owner: nil), waiter: 1, now: 0)
        _ = machine.acquireRequested(Self.acquire(holder: "b"), waiter: 2, now: 0)
        #expect(machine.timePassed(now: 499).isEmpty)
        #expect(machine.renewRequested(lock: "db", token: 2, ttlMilliseconds: nil, now: 499)?.expiresAt == 999)
        let actions = machine.timePassed(now: 999)
        guard case .remove(let lost, .leaseExpired) = actions.first, case .grant(2, let next) = actions.last else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(lost.token == 2 && next.token == 3)
        #expect(machine.renewRequested(lock: "db", token: 2, ttlMilliseconds: nil, now: 1000) == nil)
    }

    @Test func aGoneOwnerLosesItsLocksAndItsPlaceInLine() {
        var machine = Self.primed()
        _ = machine.acquireRequested(Self.acquire(owner: "dead"), waiter: 1, now: 0)
        _ = machine.acquireRequested(Self.acquire(owner: "dead", holder: "dead-waiter"), waiter: 2, now: 0)
        _ = machine.acquireRequested(Self.acquire(owner: "alive", holder: "b"), waiter: 3, now: 0)
        let actions = machine.ownerGone("dead", now: 10)
        #expect(actions.count == 3)
        #expect(actions.contains { if case .grant(3, let holder) = $0 { return holder.token == 3 } else { return false } })
        #expect(machine.owners == ["alive"])
    }

    @Test func aWaiterPastItsDeadlineIsRefusedNamingTheHolder() {
        var machine = Self.primed()
        _ = machine.acquireRequested(Self.acquire(ttl: 10_000, holder: "node-a"), waiter: 1, now: 0)
        _ = machine.acquireRequested(Self.acquire(wait: 200, holder: "node-b"), waiter: 2, now: 0)
        let actions = machine.timePassed(now: 200)
        guard case .refuse(2, let exception) = actions.first else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(exception.code == .timeout)
        #expect(exception.text.contains("node-a (token 2"))
        // Not willing to wait: refused at once.
        #expect(machine.acquireRequested(Self.acquire(wait: 0), waiter: 3, now: 300).first.map { if case .refuse(3, _) = $0 { true } else { false } } == true)
    }

    @Test func aRestartKeepsHoldersAndSkipsTheWholeReservedRange() {
        let held = LockHolderRecord(lock: "db", token: 7, limit: 1, owner: "q", holder: "a", ttlMilliseconds: 1000, expiresAt: 5000)
        var machine = LockStateMachine(holders: [held], reservedThrough: 4096)
        #expect(machine.status("db", now: 0).holders.map(\.token) == [7])
        let actions = Self.reserved(&machine, machine.acquireRequested(Self.acquire(wait: 10_000), waiter: 1, now: 0), now: 0)
        #expect(actions.isEmpty)
        let handoff = machine.releaseRequested(lock: "db", token: 7, now: 1)
        let reservedHandoff = Self.reserved(&machine, handoff, now: 1)
        #expect(reservedHandoff.contains { if case .grant(1, let holder) = $0 { return holder.token == 4097 } else { return false } })
    }

    @Test func eventsLatchAndBarriersCountDistinctNodes() {
        var board = EventBoard()
        let wait = WaitRequest(event: "db-ready", scope: "web", count: 2, timeoutMilliseconds: 1000)
        #expect(board.waitRequested(wait, waiter: 1, now: 0).isEmpty)
        #expect(board.signalled(SignalRequest(event: "db-ready", scope: "web", node: "a"), now: 1).1.isEmpty)
        // The same node again does not count twice.
        #expect(board.signalled(SignalRequest(event: "db-ready", scope: "web", node: "a", data: .int(2)), now: 2).1.isEmpty)
        let done = board.signalled(SignalRequest(event: "db-ready", scope: "web", node: "b"), now: 3).1
        guard case .answer(1, let state) = done.first else {
            Issue.record("unexpected \(done)")
            return
        }
        #expect(state.satisfied && state.signals.map(\.node) == ["a", "b"] && state.signals[0].data == .int(2))
        // Latched: a later wait returns at once; another scope does not see it.
        #expect(board.waitRequested(wait, waiter: 2, now: 10).count == 1)
        #expect(board.waitRequested(WaitRequest(event: "db-ready", scope: "global", timeoutMilliseconds: 0), waiter: 3, now: 10)
            == [.answer(3, EventState(event: "db-ready", scope: "global", signals: [], satisfied: false))])
        #expect(board.waitRequested(WaitRequest(event: "x", scope: "web", timeoutMilliseconds: 100), waiter: 4, now: 10).isEmpty)
        #expect(board.timePassed(now: 110) == [.answer(4, EventState(event: "x", scope: "web", signals: [], satisfied: false))])
    }
}
