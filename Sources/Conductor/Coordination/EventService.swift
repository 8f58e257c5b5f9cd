import Mesh

/// Latched events and counted barriers, without I/O. A signal is kept (latched) and
/// counted once per node; a wait is satisfied once `count` distinct nodes signalled.
public struct EventBoard: Sendable {
    public typealias WaiterID = UInt64

    public enum Action: Hashable, Sendable {
        /// Answer the waiter: satisfied, or timed out (`satisfied: false`).
        case answer(WaiterID, EventState)
    }

    struct Waiter: Hashable, Sendable {
        var id: WaiterID
        var key: EventKey
        var count: Int
        var deadline: Int64
    }

    private(set) var signals: [EventKey: [EventSignal]]
    private var waiters: [WaiterID: Waiter] = [:]

    public init(signals: [EventKey: [EventSignal]] = [:]) {
        self.signals = signals
    }

    /// Records the signal (a node signalling again replaces its data) and answers every
    /// wait it completes. Returns the stored signal and the answers.
    public mutating func signalled(_ request: SignalRequest, now: Int64) -> (EventSignal, [Action]) {
        let key = EventKey(scope: request.scope, event: request.event)
        let signal = EventSignal(node: request.node, data: request.data, at: now)
        var list = self.signals[key] ?? []
        if let index = list.firstIndex(where: { $0.node == request.node }) {
            list[index] = signal
        } else {
            list.append(signal)
        }
        self.signals[key] = list
        var actions: [Action] = []
        for waiter in self.waiters.values.sorted(by: { $0.id < $1.id }) where waiter.key == key && list.count >= waiter.count {
            self.waiters[waiter.id] = nil
            actions.append(.answer(waiter.id, self.state(key, satisfied: true)))
        }
        return (signal, actions)
    }

    /// Answers at once when already satisfied (latched) or when `timeout` is 0; otherwise
    /// the waiter is kept until a signal completes it or `timePassed` reaches its deadline.
    public mutating func waitRequested(_ request: WaitRequest, waiter: WaiterID, now: Int64) -> [Action] {
        let key = EventKey(scope: request.scope, event: request.event)
        let count = self.signals[key]?.count ?? 0
        if count >= request.count { return [.answer(waiter, self.state(key, satisfied: true))] }
        if request.timeoutMilliseconds == 0 { return [.answer(waiter, self.state(key, satisfied: false))] }
        self.waiters[waiter] = Waiter(id: waiter, key: key, count: request.count, deadline: now + request.timeoutMilliseconds)
        return []
    }

    public mutating func timePassed(now: Int64) -> [Action] {
        let late = self.waiters.values.filter { $0.deadline <= now }.sorted { $0.id < $1.id }
        return late.map { waiter in
            self.waiters[waiter.id] = nil
            return .answer(waiter.id, self.state(waiter.key, satisfied: false))
        }
    }

    public mutating func cancelled(_ waiter: WaiterID) {
        self.waiters[waiter] = nil
    }

    public func state(_ key: EventKey, satisfied: Bool) -> EventState {
        EventState(event: key.event, scope: key.scope, signals: self.signals[key] ?? [], satisfied: satisfied)
    }
}

/// Runs the `EventBoard` against a `CoordinationStore`: signals are stored before they
/// are acknowledged or counted; a timed-out wait names the expected nodes that did not
/// signal when the store knows them (a deployment's instances).
public actor EventService {
    private var board = EventBoard()
    private var loaded = false
    private var gate = SerialGate()
    private let store: any CoordinationStore
    private let clock: CoordinationClock
    private var waiting: [EventBoard.WaiterID: CheckedContinuation<EventState?, Never>] = [:]
    private var nextWaiter: EventBoard.WaiterID = 0
    private var closed = false

    public init(store: any CoordinationStore, clock: CoordinationClock = .system) {
        self.store = store
        self.clock = clock
    }

    /// Reads the latched signals from the store, once.
    public func load() async throws(CoordinationError) {
        await self.enter()
        defer { self.leave() }
        if let failure = await self.loadIfNeeded() { throw CoordinationError(.store, failure.text) }
    }

    private func loadIfNeeded() async -> ExceptionBody? {
        if self.loaded { return nil }
        do {
            self.board = EventBoard(signals: try await self.store.loadCoordination().signals)
            self.loaded = true
            return nil
        } catch {
            return ExceptionBody(code: .internalError, text: "cannot load the events: \(error)")
        }
    }

    /// Signals are stored and counted one at a time, in the order they came (`SerialGate`).
    private func enter() async {
        if self.gate.tryEnter() { return }
        await withCheckedContinuation { self.gate.wait($0) }
    }

    private func leave() {
        self.gate.leave()?.resume()
    }

    public func signal(_ request: SignalRequest) async -> Result<EventState, ExceptionBody> {
        await self.enter()
        defer { self.leave() }
        if let failure = await self.loadIfNeeded() { return .failure(failure) }
        let now = self.clock.now()
        let signal = EventSignal(node: request.node, data: request.data, at: now)
        do {
            try await self.store.saveSignal(EventKey(scope: request.scope, event: request.event), signal)
        } catch {
            return .failure(ExceptionBody(code: .internalError, text: "the signal could not be stored: \(error)"))
        }
        let (_, actions) = self.board.signalled(request, now: signal.at)
        self.carry(actions)
        return .success(self.board.state(EventKey(scope: request.scope, event: request.event), satisfied: true))
    }

    /// The event's state once satisfied or at the timeout; 410 when the coordinator stops first.
    public func wait(_ request: WaitRequest) async -> Result<EventState, ExceptionBody> {
        let id = self.nextWaiter
        self.nextWaiter += 1
        let stopping = ExceptionBody(code: .gone, text: "the coordinator is stopping")
        if self.closed { return .failure(stopping) }
        await self.enter()
        let failure = await self.loadIfNeeded()
        self.leave()
        if let failure { return .failure(failure) }
        if self.closed { return .failure(stopping) }
        let answered = await withCheckedContinuation { continuation in
            self.waiting[id] = continuation
            self.carry(self.board.waitRequested(request, waiter: id, now: self.clock.now()))
        }
        guard var state = answered else { return .failure(stopping) }
        if !state.satisfied, let expected = try? await self.store.expectedNodes(scope: request.scope) {
            let signalled = Set(state.signals.map(\.node))
            state.missing = expected.filter { !signalled.contains($0) }
        }
        return .success(state)
    }

    public func timePassed() {
        guard self.loaded else { return }
        self.carry(self.board.timePassed(now: self.clock.now()))
    }

    /// Ends every wait now with an error (not a timeout: nothing timed out): the
    /// coordinator is stopping.
    public func close() {
        self.closed = true
        let waiting = self.waiting
        self.waiting = [:]
        for (id, continuation) in waiting {
            self.board.cancelled(id)
            continuation.resume(returning: nil)
        }
    }

    private func carry(_ actions: [EventBoard.Action]) {
        for case .answer(let waiter, let state) in actions {
            let state: EventState? = state
            self.waiting.removeValue(forKey: waiter)?.resume(returning: state)
        }
    }
}
