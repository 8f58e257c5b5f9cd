import Logging
import Mesh

/// Runs the `LockStateMachine` against a `CoordinationStore`: the one owner of the lock
/// table. Acquires wait here (a continuation per waiter) until granted or refused.
///
/// Order of effects: a token range is stored before tokens from it are issued, a grant
/// is stored before it is answered. A removal is stored late, in the transaction of the
/// next grant or renewal, or at the next tick (`timePassed`, every 20 ms) if none comes
/// first: a release then costs no write, and a grant one transaction. Store calls are
/// synchronous inside the actor, so no other event can slip between a decision and its
/// record.
public actor LockService {
    private var machine: LockStateMachine
    private let store: any CoordinationStore
    private let clock: CoordinationClock
    private let logger: Logger
    private var waiting: [LockStateMachine.WaiterID: CheckedContinuation<Result<LockGrant, ExceptionBody>, Never>] = [:]
    private var nextWaiter: LockStateMachine.WaiterID = 0
    private var closed = false
    /// Holders removed from the machine whose rows are still in the store.
    private var unstoredRemovals: [LockHolderKey] = []

    public init(store: any CoordinationStore, clock: CoordinationClock = .system, logger: Logger) throws(CoordinationError) {
        do {
            let snapshot = try store.loadCoordination()
            self.machine = LockStateMachine(holders: snapshot.holders, reservedThrough: snapshot.reservedThrough)
        } catch {
            throw CoordinationError(.store, "cannot load the lock table: \(error)")
        }
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    /// Waits for the lock (up to `waitMilliseconds`); the grant, or 408 with who holds it.
    public func acquire(_ request: LockAcquireRequest) async -> Result<LockGrant, ExceptionBody> {
        if self.closed { return .failure(ExceptionBody(code: .gone, text: "the coordinator is stopping")) }
        let id = self.nextWaiter
        self.nextWaiter += 1
        return await withCheckedContinuation { continuation in
            self.waiting[id] = continuation
            self.carry(self.machine.acquireRequested(request, waiter: id, now: self.clock.now()))
        }
    }

    public func renew(_ request: LockTokenRequest) -> Result<LockTokenResult, ExceptionBody> {
        if let ttl = request.ttlMilliseconds, !(100...86_400_000).contains(ttl) {
            return .failure(ExceptionBody(code: .invalidRequest, text: "ttl must be between 0.1 s and 24 h, not \(ttl) ms"))
        }
        let now = self.clock.now()
        guard let renewed = self.machine.renewRequested(lock: request.lock, token: request.token, ttlMilliseconds: request.ttlMilliseconds, now: now) else {
            return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: false))
        }
        do {
            try self.store.saveLockHolder(renewed, removing: self.unstoredRemovals)
            self.unstoredRemovals = []
        } catch {
            // The lease is extended in memory; a restart would fall back to the old lease.
            self.logger.warning("renewed lease not stored", metadata: ["lock": "\(request.lock)", "error": "\(error)"])
        }
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: renewed.ttlMilliseconds, held: true))
    }

    public func release(_ request: LockTokenRequest) -> Result<LockTokenResult, ExceptionBody> {
        let actions = self.machine.releaseRequested(lock: request.lock, token: request.token, now: self.clock.now())
        let held = actions.contains { if case .remove = $0 { return true } else { return false } }
        self.carry(actions)
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: held))
    }

    public func status(_ lock: String) -> LockStatus {
        self.machine.status(lock, now: self.clock.now())
    }

    public func timePassed() {
        self.carry(self.machine.timePassed(now: self.clock.now()))
        self.storeRemovals()
    }

    public func ownerGone(_ owner: String) {
        self.carry(self.machine.ownerGone(owner, now: self.clock.now()))
    }

    public func owners() -> Set<String> { self.machine.owners }

    /// Every current holder (tests and status).
    public func holders() -> [LockHolderRecord] { self.machine.holders }

    public var nextToken: Int64 { self.machine.nextToken }

    /// Refuses every waiter, and every acquire from now on: the coordinator is stopping.
    public func close() {
        self.closed = true
        self.storeRemovals()
        let waiting = self.waiting
        self.waiting = [:]
        for continuation in waiting.values {
            continuation.resume(returning: .failure(ExceptionBody(code: .gone, text: "the coordinator is stopping")))
        }
    }

    // MARK: - Effects

    private func carry(_ actions: [LockStateMachine.Action]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .reserveTokens(let through):
                do {
                    try self.store.reserveTokens(through: through)
                    queue.append(contentsOf: self.machine.tokensReserved(through: through, now: self.clock.now()))
                } catch {
                    self.logger.error("fencing tokens not reserved; grants wait", metadata: ["error": "\(error)"])
                    self.machine.reservationFailed()
                }
            case .grant(let waiter, let holder):
                do {
                    try self.store.saveLockHolder(holder, removing: self.unstoredRemovals)
                    self.unstoredRemovals = []
                } catch {
                    self.logger.error("grant not stored; refused", metadata: ["lock": "\(holder.lock)", "error": "\(error)"])
                    self.answer(waiter, .failure(ExceptionBody(code: .internalError, text: "the grant could not be stored: \(error)")))
                    queue.append(contentsOf: self.machine.grantFailed(holder, now: self.clock.now()))
                    continue
                }
                self.answer(waiter, .success(LockGrant(lock: holder.lock, token: holder.token, leaseMilliseconds: holder.ttlMilliseconds, limit: holder.limit)))
            case .refuse(let waiter, let exception):
                self.answer(waiter, .failure(exception))
            case .remove(let holder, let reason):
                if reason != .released {
                    self.logger.info("lock lost", metadata: ["lock": "\(holder.lock)", "token": "\(holder.token)", "holder": "\(holder.holder)", "reason": "\(reason.rawValue)"])
                }
                self.unstoredRemovals.append(LockHolderKey(lock: holder.lock, token: holder.token))
            }
        }
    }

    /// Stores the removals no grant has carried yet.
    private func storeRemovals() {
        guard !self.unstoredRemovals.isEmpty else { return }
        let removals = self.unstoredRemovals
        self.unstoredRemovals = []
        do {
            try self.store.removeLockHolders(removals)
        } catch {
            // A stale row endangers nothing: on restart its token is below every new one and its lease runs out.
            self.logger.warning("released holders not removed from the store", metadata: ["count": "\(removals.count)", "error": "\(error)"])
        }
    }

    private func answer(_ waiter: LockStateMachine.WaiterID, _ result: Result<LockGrant, ExceptionBody>) {
        self.waiting.removeValue(forKey: waiter)?.resume(returning: result)
    }
}
