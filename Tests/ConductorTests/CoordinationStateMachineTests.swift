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
        _ = machine.releaseRequested(lock: "primer", token: 1, proof: .administrator, now: 0)
        return machine
    }

    /// Tests name keys after holders: holder "a" holds with the hash of "key-of-a".
    static func key(_ holder: String) -> HolderKeyHash { HolderKeyHash(presented: "key-of-\(holder)") }

    @Test func aTokenIsReservedBeforeItIsIssuedAndTokensOnlyIncrease() {
        var machine = LockStateMachine()
        let first = machine.acquireRequested(Self.acquire(), waiter: 1, now: 0)
        #expect(first == [.reserveTokens(through: LockStateMachine.reservationBlock)])
        let granted = machine.tokensReserved(through: LockStateMachine.reservationBlock, now: 0)
        #expect(granted == [.grant(1, LockHolderRecord(lock: "db", token: 1, limit: 1, owner: "q1", holder: "a", ttlMilliseconds: 1000, expiresAt: 1000, keyHash: Self.key("a")))])
        #expect(machine.acquireRequested(Self.acquire(holder: "b"), waiter: 2, now: 10).isEmpty)
        let handoff = machine.releasedByHolder(lock: "db", token: 1, now: 20)
        #expect(handoff.count == 2)
        #expect(handoff.last == .grant(2, LockHolderRecord(lock: "db", token: 2, limit: 1, owner: "q1", holder: "b", ttlMilliseconds: 1000, expiresAt: 1020, keyHash: Self.key("b"))))
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
            for case .grant(_, let holder) in machine.releasedByHolder(lock: "db", token: token, now: 5) {
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
        guard case .renewed(let renewed) = machine.renewRequested(lock: "db", token: 2, presented: Self.key("a"), ttlMilliseconds: nil, now: 499) else {
            Issue.record("not renewed")
            return
        }
        #expect(renewed.expiresAt == 999)
        let actions = machine.timePassed(now: 999)
        guard case .remove(let lost, .leaseExpired) = actions.first, case .grant(2, let next) = actions.last else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(lost.token == 2 && next.token == 3)
        #expect(machine.renewRequested(lock: "db", token: 2, presented: Self.key("a"), ttlMilliseconds: nil, now: 1000) == .notHeld)
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
        let held = LockHolderRecord(lock: "db", token: 7, limit: 1, owner: "q", holder: "a", ttlMilliseconds: 1000, expiresAt: 5000, keyHash: Self.key("a"))
        var machine = LockStateMachine(holders: [held], reservedThrough: 4096)
        #expect(machine.status("db", now: 0).holders.map(\.token) == [7])
        let actions = Self.reserved(&machine, machine.acquireRequested(Self.acquire(wait: 10_000), waiter: 1, now: 0), now: 0)
        #expect(actions.isEmpty)
        let handoff = machine.releasedByHolder(lock: "db", token: 7, now: 1)
        let reservedHandoff = Self.reserved(&machine, handoff, now: 1)
        #expect(reservedHandoff.contains { if case .grant(1, let holder) = $0 { return holder.token == 4097 } else { return false } })
    }

    /// The token is public; the key is not. Without the holder's key a release or renewal
    /// is refused and changes nothing, whoever else's key it carries; an administrator's
    /// forced release needs none.
    @Test func onlyTheHoldersKeyRenewsOrReleasesAndAnAdministratorCanForce() {
        var machine = Self.primed()
        _ = machine.acquireRequested(Self.acquire(limit: 2, holder: "a"), waiter: 1, now: 0)
        _ = machine.acquireRequested(Self.acquire(limit: 2, holder: "b"), waiter: 2, now: 0)
        _ = machine.acquireRequested(Self.acquire(limit: 2, holder: "c"), waiter: 3, now: 0)
        let held = machine.holder(lock: "db", token: 2)
        #expect(held?.holder == "a")
        for presented in [nil, HolderKeyHash(presented: "guess"), Self.key("b")] {
            #expect(machine.releaseRequested(lock: "db", token: 2, proof: .key(presented), now: 10) == [.forbid(held!)])
            #expect(machine.renewRequested(lock: "db", token: 2, presented: presented, ttlMilliseconds: 60_000, now: 10) == .forbidden(held!))
        }
        #expect(machine.holder(lock: "db", token: 2) == held, "a refused request changed the holder")
        #expect(machine.status("db", now: 10).waiters == 1)
        // A token that holds nothing is simply not held, with or without a key.
        #expect(machine.releaseRequested(lock: "db", token: 99, proof: .key(nil), now: 10).isEmpty)
        #expect(machine.renewRequested(lock: "db", token: 99, presented: nil, ttlMilliseconds: nil, now: 10) == .notHeld)
        // The holder's own key works, and the waiter moves up.
        let released = machine.releaseRequested(lock: "db", token: 2, proof: .key(Self.key("a")), now: 20)
        #expect(released.first == .remove(held!, .released))
        #expect(released.contains { if case .grant(3, _) = $0 { true } else { false } })
        // Forced: no key, its own removal reason.
        let forced = machine.holder(lock: "db", token: 3)!
        #expect(machine.releaseRequested(lock: "db", token: 3, proof: .administrator, now: 30) == [.remove(forced, .forced)])
        // A holder stored before keys existed: no key releases it, its lease or a force does.
        var legacy = LockStateMachine(
            holders: [LockHolderRecord(lock: "old", token: 5, limit: 1, owner: nil, holder: "x", ttlMilliseconds: 1000, expiresAt: 5000, keyHash: nil)],
            reservedThrough: 4096)
        #expect(legacy.releaseRequested(lock: "old", token: 5, proof: .key(HolderKeyHash(presented: "")), now: 0).count == 1)
        #expect(legacy.holder(lock: "old", token: 5) != nil)
        #expect(legacy.releaseRequested(lock: "old", token: 5, proof: .administrator, now: 0).count == 1)
        #expect(legacy.holder(lock: "old", token: 5) == nil)
    }

    @Test func keyHashesCompareWholeAndKeysAreFresh() {
        let key = HolderKey.random()
        #expect(key.hex.count == 32 && key.hex != HolderKey.random().hex)
        #expect(key.hash.matches(HolderKeyHash(presented: key.hex)))
        #expect(!key.hash.matches(HolderKeyHash(presented: key.hex + " ")))
        #expect(HolderKeyHash(stored: key.hash.hex) == key.hash)
        #expect(HolderKeyHash(stored: "not a hash") == nil)
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

extension LockStateMachine {
    /// An acquire whose key is named after its holder (`CoordinationStateMachineTests.key`).
    mutating func acquireRequested(_ request: LockAcquireRequest, waiter: WaiterID, now: Int64) -> [Action] {
        self.acquireRequested(request, waiter: waiter, keyHash: CoordinationStateMachineTests.key(request.holder), now: now)
    }

    /// A release by the holder itself, with its key.
    mutating func releasedByHolder(lock: String, token: Int64, now: Int64) -> [Action] {
        let key = self.holder(lock: lock, token: token).map { CoordinationStateMachineTests.key($0.holder) }
        return self.releaseRequested(lock: lock, token: token, proof: .key(key), now: now)
    }
}
