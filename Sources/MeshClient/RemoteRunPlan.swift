import Foundation
import Mesh

// The bookkeeping of `conductor run` without I/O: which nodes run in which batch, which
// reply belongs to whom, and who never answered. The driver (`RemoteRunner`) feeds
// it discovery results, replies and the time; it answers with what to do next. A node
// that should have answered and did not is always named: a timeout is never a success.

/// How many nodes run at once: `--batch N` or `--batch P%`.
public enum RunBatchSize: Hashable, Sendable, CustomStringConvertible {
    /// Every node at once (no `--batch`).
    case all
    case count(Int)
    /// A share of the nodes found, rounded up, at least one.
    case percent(Int)

    /// Parses `10` or `25%`.
    public init(parsing text: String) throws(MeshError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            guard let percent = Int(trimmed.dropLast()), (1...100).contains(percent) else {
                throw MeshError(.invalidArguments, "batch '\(text)' must be a percentage from 1% to 100%")
            }
            self = .percent(percent)
        } else {
            guard let count = Int(trimmed), count >= 1 else {
                throw MeshError(.invalidArguments, "batch '\(text)' must be a node count of at least 1, or a percentage like 25%")
            }
            self = .count(count)
        }
    }

    /// Nodes per batch when `total` nodes run.
    public func size(of total: Int) -> Int {
        switch self {
        case .all: return max(1, total)
        case .count(let count): return count
        case .percent(let percent): return max(1, (total * percent + 99) / 100)
        }
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .count(let count): return "\(count)"
        case .percent(let percent): return "\(percent)%"
        }
    }
}

/// What became of one node.
public struct RemoteRunNode: Hashable, Sendable, Codable {
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable {
        /// Ran and exited 0.
        case succeeded
        /// Ran and exited non-zero, or was killed at its timeout.
        case failed
        /// Answered, but with an exception (refused, invalid request) or an unreadable reply.
        case error
        /// Was found and sent the command, and no reply came before its deadline.
        case noAnswer = "no_answer"
        /// Was expected (named, or an instance of the role) but did not answer discovery.
        case notFound = "not_found"
        /// Was found but never sent the command: the run was interrupted first, or the
        /// request could not be published.
        case notRun = "not_run"
        /// Live per the coordinator's registry (a recent heartbeat), but did not answer
        /// discovery: it went silent (stopped, hung, or cut off since its last heartbeat).
        case silent
    }

    /// The agent name, `vendor:product:instance`.
    public var agent: String
    /// What the target called it, e.g. the deployment member `web[1]`.
    public var label: String?
    public var status: Status
    /// 1-based; nil when the node was never sent the command.
    public var batch: Int?
    /// The agent's answer (succeeded / failed), output cut to the run's limit.
    public var result: RunResult?
    /// What went wrong, for error / no_answer / not_found.
    public var error: String?

    public init(agent: String, label: String? = nil, status: Status, batch: Int? = nil, result: RunResult? = nil, error: String? = nil) {
        self.agent = agent
        self.label = label
        self.status = status
        self.batch = batch
        self.result = result
        self.error = error
    }
}

/// Every node's outcome and the summary; `exitStatus` is what `conductor run` exits with.
public struct RemoteRunReport: Hashable, Sendable, Codable {
    /// In the order the nodes were planned (found nodes by name, then the missing ones).
    public var nodes: [RemoteRunNode]
    public var batches: Int
    /// A predicate target told to expect more agents than answered discovery (`--expect N`):
    /// how many are missing. They cannot be named, but they are counted.
    public var unnamedMissing: Int
    /// Why discovery ended (set by `RemoteRunner`).
    public var discoveryEnded: CollectionEnd?

    public init(nodes: [RemoteRunNode], batches: Int, unnamedMissing: Int = 0, discoveryEnded: CollectionEnd? = nil) {
        self.nodes = nodes
        self.batches = batches
        self.unnamedMissing = unnamedMissing
        self.discoveryEnded = discoveryEnded
    }

    public func agents(_ status: RemoteRunNode.Status) -> [String] {
        self.nodes.filter { $0.status == status }.map(\.agent)
    }

    public var allSucceeded: Bool { !self.nodes.isEmpty && self.unnamedMissing == 0 && self.nodes.allSatisfy { $0.status == .succeeded } }

    /// 0 every node succeeded; 1 some node failed or answered with an error; 3 none failed
    /// but some never answered, were not found, went silent or were not run (or fewer than expected were
    /// found); 4 no node at all was targeted.
    public var exitStatus: Int32 {
        if self.nodes.isEmpty { return 4 }
        if self.unnamedMissing > 0 && !self.nodes.contains(where: { $0.status == .failed || $0.status == .error }) { return 3 }
        if self.nodes.contains(where: { $0.status == .failed || $0.status == .error }) { return 1 }
        if self.nodes.contains(where: { $0.status == .noAnswer || $0.status == .notFound || $0.status == .notRun || $0.status == .silent }) { return 3 }
        return 0
    }

    /// `12 succeeded, 1 failed (a), 2 never answered (b, c)`: every node not succeeded is named.
    public var summary: String {
        var parts = ["\(self.agents(.succeeded).count) succeeded"]
        let named: [(RemoteRunNode.Status, String)] = [(.failed, "failed"), (.error, "answered with an error"), (.noAnswer, "never answered"), (.notFound, "not found"), (.silent, "went silent"), (.notRun, "not run")]
        for (status, words) in named {
            let nodes = self.nodes.filter { $0.status == status }
            guard !nodes.isEmpty else { continue }
            parts.append("\(nodes.count) \(words) (\(nodes.map { node in node.label.map { "\($0) \(node.agent)" } ?? node.agent }.joined(separator: ", ")))")
        }
        if self.unnamedMissing > 0 { parts.append("\(self.unnamedMissing) expected but not found (not named: a predicate target only counts)") }
        return parts.joined(separator: ", ")
    }
}

/// The state machine of one remote run. Time is a `Duration` since the run began, given by
/// the caller, so tests drive it without sleeping.
public struct RemoteRunPlan: Sendable {
    public struct Options: Hashable, Sendable {
        public var batch: RunBatchSize
        /// Pause after a batch has fully answered (or timed out) before the next starts.
        public var batchWait: Duration
        /// How long after sending a node's request its reply may arrive: the command's
        /// timeout plus a grace for the agent to kill it and answer.
        public var replyTimeout: Duration
        /// Each of stdout and stderr is cut to this many bytes.
        public var maximumOutputBytes: Int

        public init(batch: RunBatchSize = .all, batchWait: Duration = .zero, replyTimeout: Duration, maximumOutputBytes: Int = RunResult.maximumOutputBytes) {
            self.batch = batch
            self.batchWait = batchWait
            self.replyTimeout = replyTimeout
            self.maximumOutputBytes = maximumOutputBytes
        }
    }

    /// One request to publish now.
    public struct Dispatch: Hashable, Sendable {
        public var agent: String
        public var correlationID: String
        /// Since the run began; the request's message TTL should end here too.
        public var deadline: Duration
    }

    public enum Action: Hashable, Sendable {
        /// Publish one run request per entry, now.
        case send([Dispatch])
        /// Requests are out: wait for replies, and call `next` again at the latest then.
        case waitForReplies(until: Duration)
        /// `--batch-wait` between two batches: call `next` again then.
        case pause(until: Duration)
        /// Every node is accounted for: read `report`.
        case finished
    }

    /// What `replyReceived` made of a reply.
    public enum ReplyVerdict: Hashable, Sendable {
        case accepted(agent: String)
        /// Its node had already been given up on (or had answered): ignored.
        case late(agent: String)
        /// Not a correlation id of this run, or sent by another agent than the one asked.
        case unknown
    }

    /// A node's reply, as the driver could read it.
    public enum Reply: Hashable, Sendable {
        case result(RunResult)
        case exception(ExceptionBody)
        case unreadable(String)
    }

    private enum NodeState: Hashable, Sendable {
        case waiting
        case running(correlationID: String, deadline: Duration)
        case done
    }

    private struct Entry: Hashable, Sendable {
        var node: RemoteRunNode
        var state: NodeState
    }

    public let options: Options
    private let runID: String
    private var entries: [Entry]
    private var byCorrelation: [String: Int] = [:]
    private var batchesStarted = 0
    private let unnamedMissing: Int
    /// Nodes whose outcome is final and that `takeFinished()` has not returned yet.
    private var unreported: [Int] = []
    /// Set when a batch has ended and `batchWait` is being waited out.
    private var pauseUntil: Duration?

    /// `found` are the agents that answered discovery (duplicates ignored). With `expected`
    /// (a named or role target: agent name -> label), only expected agents run and the
    /// expected ones not found are reported `notFound`; without it every found agent runs.
    /// `runID` makes the correlation ids of this run unique on a shared reply queue.
    /// `expectedCount` (a predicate target's `--expect N`): fewer found is reported as
    /// `unnamedMissing`.
    /// `silent`: live agents (per the coordinator's registry) that did not answer discovery,
    /// with why; they are reported `silent` and not run.
    public init(
        found: [String], expected: [(agent: String, label: String?)]? = nil, expectedCount: Int? = nil, silent: [(agent: String, reason: String)] = [],
        options: Options, runID: String
    ) {
        self.options = options
        self.runID = runID
        var entries: [Entry] = []
        let foundSet = Set(found)
        if let expected {
            var seen: Set<String> = []
            for (agent, label) in expected where seen.insert(agent).inserted && foundSet.contains(agent) {
                entries.append(Entry(node: RemoteRunNode(agent: agent, label: label, status: .noAnswer), state: .waiting))
            }
            seen = []
            for (agent, label) in expected where seen.insert(agent).inserted && !foundSet.contains(agent) {
                entries.append(Entry(node: RemoteRunNode(agent: agent, label: label, status: .notFound, error: "did not answer discovery"), state: .done))
                self.unreported.append(entries.count - 1)
            }
        } else {
            for agent in foundSet.sorted() {
                entries.append(Entry(node: RemoteRunNode(agent: agent, status: .noAnswer), state: .waiting))
            }
        }
        let planned = Set(entries.map(\.node.agent))
        for (agent, reason) in silent where !planned.contains(agent) {
            entries.append(Entry(node: RemoteRunNode(agent: agent, status: .silent, error: reason), state: .done))
            self.unreported.append(entries.count - 1)
        }
        self.entries = entries
        self.unnamedMissing = expected == nil ? max(0, (expectedCount ?? 0) - entries.count) : 0
    }

    /// Nodes that will be (or were) sent the command.
    public var targetCount: Int { self.entries.filter { $0.node.status != .notFound && $0.node.status != .silent }.count }
    public var batchSize: Int { self.options.batch.size(of: self.targetCount) }
    public var batchCount: Int { self.targetCount == 0 ? 0 : (self.targetCount + self.batchSize - 1) / self.batchSize }

    /// What to do now. Nodes whose deadline has passed are given up on first.
    public mutating func next(now: Duration) -> Action {
        self.expire(now: now)
        let deadlines = self.entries.compactMap { entry -> Duration? in
            if case .running(_, let deadline) = entry.state { return deadline }
            return nil
        }
        if let earliest = deadlines.min() { return .waitForReplies(until: earliest) }
        guard self.entries.contains(where: { $0.state == .waiting }) else { return .finished }
        if self.batchesStarted > 0 && self.options.batchWait > .zero {
            let until = self.pauseUntil ?? now + self.options.batchWait
            self.pauseUntil = until
            if now < until { return .pause(until: until) }
        }
        self.pauseUntil = nil
        self.batchesStarted += 1
        let deadline = now + self.options.replyTimeout
        var dispatches: [Dispatch] = []
        for index in self.entries.indices where self.entries[index].state == .waiting && dispatches.count < self.batchSize {
            let correlationID = "\(self.runID)-\(index)"
            self.entries[index].state = .running(correlationID: correlationID, deadline: deadline)
            self.entries[index].node.batch = self.batchesStarted
            self.byCorrelation[correlationID] = index
            dispatches.append(Dispatch(agent: self.entries[index].node.agent, correlationID: correlationID, deadline: deadline))
        }
        return .send(dispatches)
    }

    /// A reply on the run's queue. `agent` is the reply's `qmf.agent` header: a reply
    /// claiming another agent than the one asked is not accepted.
    @discardableResult
    public mutating func replyReceived(correlationID: String?, agent: String?, _ reply: Reply, now: Duration) -> ReplyVerdict {
        guard let correlationID, let index = self.byCorrelation[correlationID] else { return .unknown }
        let node = self.entries[index].node.agent
        guard agent == nil || agent == node else { return .unknown }
        guard case .running(_, let deadline) = self.entries[index].state, now <= deadline else { return .late(agent: node) }
        self.finish(index)
        switch reply {
        case .result(let result):
            let bounded = result.bounded(to: self.options.maximumOutputBytes)
            self.entries[index].node.result = bounded
            self.entries[index].node.status = result.exitCode == 0 && !result.timedOut ? .succeeded : .failed
            if result.timedOut { self.entries[index].node.error = "killed at its timeout" }
        case .exception(let exception):
            self.entries[index].node.status = .error
            self.entries[index].node.error = exception.description
        case .unreadable(let reason):
            self.entries[index].node.status = .error
            self.entries[index].node.error = "unreadable reply: \(reason)"
        }
        return .accepted(agent: node)
    }

    /// The request could not be published (e.g. the channel closed): the node did not run.
    public mutating func sendFailed(correlationID: String, reason: String) {
        guard let index = self.byCorrelation[correlationID], case .running = self.entries[index].state else { return }
        self.finish(index)
        self.entries[index].node.status = .notRun
        self.entries[index].node.error = "request not sent: \(reason)"
    }

    /// The broker returned the request as unroutable (it was published `mandatory`): the
    /// agent's request queue is gone, so no reply can come. The node is `noAnswer` at once
    /// instead of at its deadline.
    public mutating func requestReturned(correlationID: String, reason: String) {
        guard let index = self.byCorrelation[correlationID], case .running = self.entries[index].state else { return }
        self.finish(index)
        self.entries[index].node.status = .noAnswer
        self.entries[index].node.error = "unreachable: the broker returned the request (\(reason))"
    }

    /// Gives up on every node still waiting or running (the run is being cancelled):
    /// running ones become no_answer, unsent ones not_run.
    public mutating func abandon(reason: String) {
        for index in self.entries.indices {
            switch self.entries[index].state {
            case .running:
                self.entries[index].node.error = "no reply: \(reason)"
            case .waiting:
                self.entries[index].node.status = .notRun
                self.entries[index].node.error = reason
            case .done:
                continue
            }
            self.finish(index)
        }
    }

    /// Nodes that reached their final outcome since the last call, in that order (for
    /// printing results as they come).
    public mutating func takeFinished() -> [RemoteRunNode] {
        defer { self.unreported = [] }
        return self.unreported.map { self.entries[$0].node }
    }

    private mutating func finish(_ index: Int) {
        self.entries[index].state = .done
        self.unreported.append(index)
    }

    public var report: RemoteRunReport {
        RemoteRunReport(nodes: self.entries.map(\.node), batches: self.batchesStarted, unnamedMissing: self.unnamedMissing)
    }

    /// Running nodes whose deadline has passed become `noAnswer`.
    private mutating func expire(now: Duration) {
        for index in self.entries.indices {
            guard case .running(_, let deadline) = self.entries[index].state, now > deadline else { continue }
            self.finish(index)
            self.entries[index].node.status = .noAnswer
            self.entries[index].node.error = "no reply within \(self.options.replyTimeout)"
        }
    }
}

extension RunResult {
    /// stdout and stderr each cut to at most `maximumBytes` bytes (on a UTF-8 character
    /// boundary); `truncated` is set when anything was cut.
    public func bounded(to maximumBytes: Int) -> RunResult {
        var copy = self
        let (stdout, cutOut) = Self.prefix(self.stdout, maximumBytes)
        let (stderr, cutErr) = Self.prefix(self.stderr, maximumBytes)
        copy.stdout = stdout
        copy.stderr = stderr
        copy.truncated = self.truncated || cutOut || cutErr
        return copy
    }

    private static func prefix(_ text: String, _ maximumBytes: Int) -> (String, Bool) {
        let limit = max(0, maximumBytes)
        guard text.utf8.count > limit else { return (text, false) }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: limit)
        // Back off to the start of a scalar so the cut never splits a character's bytes.
        while end > text.utf8.startIndex, UTF8.isContinuation(text.utf8[end]) {
            end = text.utf8.index(before: end)
        }
        return (String(decoding: text.utf8[..<end], as: UTF8.self), true)
    }
}
