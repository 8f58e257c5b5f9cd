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
///
/// Each acquire gets a fresh `HolderKey`; the machine and the store see only its hash, and
/// the grant hands the key to that waiter alone. A renewal or release without it is
/// refused (403) and logged with the requester's AMQP user; an administrator's forced
/// release is audited in the store before the holder is let go.
public actor LockService {
    private struct Waiting {
        var continuation: CheckedContinuation<Result<LockGrant, ExceptionBody>, Never>
        var key: HolderKey
    }

    private var machine: LockStateMachine
    private let store: any CoordinationStore
    private let clock: CoordinationClock
    private let logger: Logger
    private var waiting: [LockStateMachine.WaiterID: Waiting] = [:]
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

    /// Waits for the lock (up to `waitMilliseconds`); the grant with its holder key, or 408
    /// with who holds it. `user`: the request's broker-validated AMQP user.
    public func acquire(_ request: LockAcquireRequest, by user: String? = nil) async -> Result<LockGrant, ExceptionBody> {
        if self.closed { return .failure(ExceptionBody(code: .gone, text: "the coordinator is stopping")) }
        let id = self.nextWaiter
        self.nextWaiter += 1
        let key = HolderKey.random()
        return await withCheckedContinuation { continuation in
            self.waiting[id] = Waiting(continuation: continuation, key: key)
            self.carry(self.machine.acquireRequested(request, waiter: id, keyHash: key.hash, acquiredBy: user, now: self.clock.now()))
        }
    }

    /// Extends the lease; refused (403) unless the request carries the holder's key.
    public func renew(_ request: LockTokenRequest, by user: String? = nil) -> Result<LockTokenResult, ExceptionBody> {
        if let ttl = request.ttlMilliseconds, !(100...86_400_000).contains(ttl) {
            return .failure(ExceptionBody(code: .invalidRequest, text: "ttl must be between 0.1 s and 24 h, not \(ttl) ms"))
        }
        let now = self.clock.now()
        let presented = request.holderKey.map(HolderKeyHash.init(presented:))
        let renewed: LockHolderRecord
        switch self.machine.renewRequested(lock: request.lock, token: request.token, presented: presented, ttlMilliseconds: request.ttlMilliseconds, now: now) {
        case .notHeld:
            return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: false))
        case .forbidden(let holder):
            return .failure(self.notTheHolder(holder, request: request, method: Coordinator.Method.lockRenew, user: user))
        case .renewed(let holder):
            renewed = holder
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

    /// Ends the hold; refused (403) unless the request carries the holder's key.
    public func release(_ request: LockTokenRequest, by user: String? = nil) -> Result<LockTokenResult, ExceptionBody> {
        let proof = LockStateMachine.HolderProof.key(request.holderKey.map(HolderKeyHash.init(presented:)))
        let actions = self.machine.releaseRequested(lock: request.lock, token: request.token, proof: proof, now: self.clock.now())
        if case .forbid(let holder)? = actions.first {
            return .failure(self.notTheHolder(holder, request: request, method: Coordinator.Method.lockRelease, user: user))
        }
        let held = actions.contains { if case .remove = $0 { return true } else { return false } }
        self.carry(actions)
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: held))
    }

    /// An administrator's release of someone else's hold, without its key. The caller has
    /// checked that `user` may; the audit record (and the row's deletion) is stored before
    /// the holder is let go, so a forced release that cannot be audited does not happen.
    public func forceRelease(_ request: LockTokenRequest, by user: String) -> Result<LockTokenResult, ExceptionBody> {
        guard let holder = self.machine.holder(lock: request.lock, token: request.token) else {
            return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: false))
        }
        do {
            try self.store.recordForcedRelease(holder, by: user, removing: self.unstoredRemovals)
            self.unstoredRemovals = []
        } catch {
            self.logger.error("forced release not audited; not done", metadata: ["lock": "\(holder.lock)", "token": "\(holder.token)", "error": "\(error)"])
            return .failure(ExceptionBody(code: .internalError, text: "the forced release could not be recorded in the audit trail, so it was not done: \(error)"))
        }
        self.logger.warning(
            "lock released by force",
            metadata: [
                "lock": "\(holder.lock)", "token": "\(holder.token)", "holder": "\(holder.holder)", "acquired_by": "\(holder.acquiredBy ?? "-")",
                "user_id": "\(user)",
            ])
        self.carry(self.machine.releaseRequested(lock: request.lock, token: request.token, proof: .administrator, now: self.clock.now()))
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: true))
    }

    /// The 403 for a renewal or release that names a holder without its key, logged with
    /// who asked.
    private func notTheHolder(_ holder: LockHolderRecord, request: LockTokenRequest, method: String, user: String?) -> ExceptionBody {
        let why: String
        if holder.keyHash == nil {
            why = "it was granted before holder keys existed, so only its lease, its owner's connection or a forced release ends it"
        } else if request.holderKey == nil {
            why = "the request carried no holder_key (the key its grant handed to the holder)"
        } else {
            why = "the request's holder_key is not the one its grant handed to the holder"
        }
        self.logger.warning(
            "lock request refused: not the holder",
            metadata: [
                "method": "\(method)", "lock": "\(holder.lock)", "token": "\(holder.token)", "user_id": "\(user ?? "-")",
                "holder": "\(holder.holder)",
            ])
        // Callers name the method before the text (`lock_release: token 17 holds ...`).
        return ExceptionBody(code: .forbidden, text: "token \(holder.token) holds lock '\(holder.lock)' and only its holder may renew or release it; \(why)")
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
        for waiter in waiting.values {
            waiter.continuation.resume(returning: .failure(ExceptionBody(code: .gone, text: "the coordinator is stopping")))
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
                // The key goes to this waiter only, and is kept nowhere else (after `close()`
                // nobody waits for it).
                guard let key = self.waiting[waiter]?.key else { continue }
                self.answer(
                    waiter,
                    .success(LockGrant(lock: holder.lock, token: holder.token, leaseMilliseconds: holder.ttlMilliseconds, limit: holder.limit, holderKey: key.hex)))
            case .refuse(let waiter, let exception):
                self.answer(waiter, .failure(exception))
            case .remove(_, .forced):
                // `forceRelease` stored its removal with the audit record.
                continue
            case .forbid:
                // Answered by `release`, which returns before carrying anything.
                continue
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
        self.waiting.removeValue(forKey: waiter)?.continuation.resume(returning: result)
    }
}
