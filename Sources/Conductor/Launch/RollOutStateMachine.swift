import Foundation
import Mesh

/// Where one member of a roll-out stands. The store keeps an `InstanceState` and a
/// `JobState`; a phase says which of those it implies (`instanceState`, `jobState`), so
/// the machine moves the store by entering a phase instead of keeping three enums in step.
enum MemberPhase: Hashable, Sendable {
    /// Nothing recorded yet: its intent is being recorded.
    case unrecorded
    /// Recorded, never handed to its provider.
    case recorded
    /// Handed to its provider by an earlier run: being looked for (`isAlive`, `locate`).
    case locating
    /// Its provider is starting it.
    case starting
    /// Running; its agent not heard yet.
    case awaitingAgent
    /// Its agent was heard (these are the heartbeat's attributes); its facts are being read.
    case readingFacts(heartbeat: MeshValue)
    /// Its facts are known; it waits for what its parameters reference.
    case up
    /// Its job's intent is being recorded (or found recorded).
    case recordingJob
    /// Its job was sent; the answer is awaited.
    case configuring(jobID: String)
    /// Its job succeeded; its facts are read again (a service may have published one).
    case finishing(jobID: String)
    case configured
    case failed(String)

    /// The phase a member's records put it in when a roll-out (fresh or `fwd`) begins.
    init(recovered instance: InstanceRecord?) {
        guard let instance else {
            self = .unrecorded
            return
        }
        switch instance.state {
        case .recorded: self = .recorded
        case .starting, .started, .configuring, .configured: self = .locating
        case .failed, .terminated: self = .failed(instance.failureReason ?? "instance \(instance.state.rawValue)")
        }
    }

    /// The instance state the store holds once a member is in this phase; nil where the
    /// phase does not decide it (not recorded yet, or a replay may find it further on).
    var instanceState: InstanceState? {
        switch self {
        case .unrecorded, .locating, .finishing: nil
        case .recorded: .recorded
        case .starting: .starting
        case .awaitingAgent, .readingFacts, .up, .recordingJob: .started
        case .configuring: .configuring
        case .configured: .configured
        case .failed: .failed
        }
    }

    /// The state of its configuration job in the store, where the phase implies one.
    var jobState: JobState? {
        switch self {
        case .configuring: .sent
        case .finishing, .configured: .succeeded
        default: nil
        }
    }

    var isFinished: Bool {
        switch self {
        case .configured, .failed: true
        default: false
        }
    }

    var isFailed: Bool { if case .failed = self { true } else { false } }

    /// The store moves that bring `stored` to `target`, in an order the store allows. A
    /// replay may find the store further on already (a configured instance whose job is
    /// replayed): it stays where it is.
    static func moves(from stored: InstanceState, to target: InstanceState) -> [InstanceState] {
        guard stored != target else { return [] }
        switch (stored, target) {
        case (_, .failed): return [.failed]
        case (.recorded, .starting), (.starting, .started), (.started, .configuring), (.configured, .configuring), (.configuring, .configured):
            return [target]
        case (.started, .configured): return [.configuring, .configured]
        default: return []
        }
    }
}

/// What the store holds for the generation being rolled out, read before the roll-out
/// begins: empty for a fresh launch, whatever a crashed run left for `fwd`.
struct RollOutRecords: Hashable, Sendable {
    var instances: [InstanceRecord] = []
    /// By instance id.
    var jobs: [UUID: [JobRecord]] = [:]
    var facts: [UUID: [FactRecord]] = [:]
}

/// The launch roll-out without I/O: record, start (or find running), hear the agents, read
/// their facts, resolve, record and send each job, collect the answers, finish. Events are
/// the `mutating` methods; each returns the actions to carry out, in order. The driver
/// (`Launcher.rollOut`) carries them out one at a time and feeds back what they returned.
/// Every action that changes the world comes after the record that makes it idempotent
/// (an instance's intent before its start, a job's intent before its send), so a machine
/// that `recovered` what a crashed one recorded starts nothing twice and runs nothing twice.
/// Time is injected (`now`, a monotonic offset): there are no clocks in here.
struct RollOutStateMachine: Sendable {
    struct Configuration: Sendable {
        var plan: ResolutionPlan
        var environment: String
        var generation: GenerationRecord
        var waitBudget: Duration
        var jobTimeout: Duration
        var secrets: [SecretID: String] = [:]
        /// Each member's directory, named when its agent never came up (its agent.log is there).
        var workDirectories: [MemberID: String] = [:]
    }

    /// An agent's answer to a job.
    enum JobAnswer: Hashable, Sendable {
        case result(JobResult)
        /// An `_exception`, or an answer that could not be read.
        case refused(String)
    }

    /// What a job's record keeps as its result.
    enum RecordedResult: Hashable, Sendable {
        case result(JobResult)
        case error(String)
    }

    enum Action: Hashable, Sendable {
        /// A progress line.
        case report(LaunchEvent)
        /// Record the intent to start the member; then `instanceRecorded`.
        case recordInstance(MemberID, provider: String)
        /// Ask the provider; then `instanceStarted` or `startFailed`.
        case startInstance(MemberID, instanceID: UUID, ordinal: Int)
        /// Is the recorded instance running (`isAlive(handle)`, else `locate(instanceID)`)? Then `instanceFound`.
        case findInstance(MemberID, instanceID: UUID, handle: InstanceHandle?)
        case transitionInstance(UUID, to: InstanceState, handle: InstanceHandle?, address: String?, reason: String?)
        case recordFact(UUID, name: String, value: MeshValue)
        /// Read the agent's facts (`refresh`); then `factsRefreshed`.
        case refreshFacts(MemberID, AgentName)
        /// Record the job's intent (idempotent per instance and name); then `jobRecorded`.
        case recordJob(MemberID, instanceID: UUID, name: String, draft: ConfigurationJob)
        /// Send it (to the agent's durable inbox) and collect its answer: `jobAnswered` or `jobLost`.
        case sendJob(MemberID, ConfigurationJob, to: AgentName)
        case transitionJob(String, to: JobState, result: RecordedResult?)
        case activateGeneration(Int64)
        case failGeneration(Int64, reason: String)
        case setDeploymentStatus(DeploymentStatus, reason: String?)
        /// Every member is started (or found, or failed): the wait budget starts counting
        /// now; then `waitBudgetArmed(now:)`. A slow provider does not eat the time its
        /// agents get to come up.
        case armWaitBudget
        /// The roll-out is over: this is its result.
        case finish(LaunchResult)
    }

    struct Member: Sendable {
        var plan: MemberPlan
        var ordinal: Int
        var phase: MemberPhase
        var record: InstanceRecord?
        /// Its jobs as recovered (an interrupted re-configuration is among them).
        var jobs: [JobRecord] = []
        var agent: AgentName?
        var address: String?
        var resolved: [ResolvedService]?
        var result: JobResult?
        var waits: [Requirement] = []
    }

    private enum State: Sendable {
        case initial
        /// Members are prepared (recorded, started or found) one after another, in plan order.
        case preparing(next: Int)
        /// Every member prepared; the budget's end, once armed.
        case watching(deadline: Duration?)
        case finished
    }

    let configuration: Configuration
    private var state: State = .initial
    /// `armWaitBudget` was asked for.
    private var budgetRequested = false
    private(set) var members: [MemberID: Member] = [:]
    private var known: KnownValues

    init(_ configuration: Configuration) {
        self.configuration = configuration
        self.known = KnownValues(secrets: configuration.secrets)
        for (ordinal, plan) in configuration.plan.members.enumerated() {
            self.members[plan.member] = Member(plan: plan, ordinal: ordinal, phase: .unrecorded)
        }
    }

    var isFinished: Bool { if case .finished = self.state { true } else { false } }

    func phase(of member: MemberID) -> MemberPhase? { self.members[member]?.phase }

    private var order: [MemberID] { self.configuration.plan.members.map(\.member) }
    private var deployment: String { self.configuration.plan.deployment }

    // MARK: - Events

    /// The roll-out begins from what the store holds for this generation (nothing, for a
    /// fresh launch). The wait budget counts once every member is prepared (`armWaitBudget`).
    mutating func recovered(_ records: RollOutRecords, now: Duration) -> [Action] {
        guard case .initial = self.state else { return [] }
        let byMember = Dictionary(records.instances.map { ($0.member, $0) }, uniquingKeysWith: { first, _ in first })
        for id in self.order {
            guard var member = self.members[id], let record = byMember[id.description] else { continue }
            member.record = record
            member.jobs = records.jobs[record.id] ?? []
            member.phase = MemberPhase(recovered: record)
            member.address = record.address
                ?? records.facts[record.id]?.first { $0.name == "ipaddress" }?.value.stringValue
            member.agent = Self.agentName(of: record)
            self.members[id] = member
        }
        self.state = .preparing(next: 0)
        let report = Action.report(
            .recorded(deployment: self.deployment, environment: self.configuration.environment,
                      generation: self.configuration.generation.number, members: self.order.count))
        return [report] + self.prepareNext()
    }

    mutating func instanceRecorded(_ record: InstanceRecord) -> [Action] {
        guard let id = self.order.first(where: { $0.description == record.member }), var member = self.members[id],
            member.phase == .unrecorded
        else { return [] }
        member.record = record
        member.phase = MemberPhase(recovered: record)
        member.agent = Self.agentName(of: record)
        self.members[id] = member
        return self.prepare(id)
    }

    /// The recorded instance runs (`handle`), or nothing was found (nil).
    mutating func instanceFound(_ id: MemberID, _ handle: InstanceHandle?) -> [Action] {
        guard let member = self.members[id], member.phase == .locating, let record = member.record else { return [] }
        guard let handle else {
            if record.state == .starting {
                // Asked for, never confirmed, and not running: it is started now.
                return self.start(id)
            }
            // Started once and now gone: starting it again would be a second instance.
            // (Not reported as a progress line, as before: the table says it.)
            let reason = "the instance is gone (was \(record.state.rawValue))"
            return self.enter(id, .failed(reason), reason: reason) + self.preparedOne()
        }
        self.members[id]?.address = handle.address ?? record.address ?? member.address
        self.members[id]?.agent = Self.agentName(of: record, handle: handle)
        let address = self.members[id]?.address
        return self.enter(id, .awaitingAgent, handle: handle, address: handle.address)
            + [.report(.started(member: id.description, address: address, reused: true))] + self.preparedOne()
    }

    /// Starts run side by side (a remote provider takes seconds per instance): the next
    /// member is prepared as soon as one is handed to its provider, and the wait budget is
    /// armed once the last start returned.
    mutating func instanceStarted(_ id: MemberID, _ handle: InstanceHandle) -> [Action] {
        guard self.members[id]?.phase == .starting, let record = self.members[id]?.record else { return [] }
        self.members[id]?.address = handle.address
        self.members[id]?.agent = Self.agentName(of: record, handle: handle)
        return self.enter(id, .awaitingAgent, handle: handle, address: handle.address)
            + [.report(.started(member: id.description, address: handle.address, reused: false))] + self.armOnceStarted()
    }

    mutating func startFailed(_ id: MemberID, reason: String) -> [Action] {
        guard self.members[id]?.phase == .starting else { return [] }
        return self.fail(id, reason) + self.armOnceStarted() + self.advance()
    }

    /// A heartbeat; `attributes` stand in for the facts when the agent does not answer `refresh`.
    mutating func heartbeat(from agent: AgentName, attributes: MeshValue) -> [Action] {
        guard let id = self.order.first(where: { self.members[$0]?.agent?.instance == agent.instance }),
            let member = self.members[id], member.phase == .awaitingAgent
        else { return [] }
        self.members[id]?.phase = .readingFacts(heartbeat: attributes)
        return [.refreshFacts(id, member.agent ?? agent)]
    }

    /// The agent's facts (nil: it did not answer `refresh`).
    mutating func factsRefreshed(_ id: MemberID, _ facts: MeshValue?) -> [Action] {
        guard let member = self.members[id], let record = member.record else { return [] }
        switch member.phase {
        case .readingFacts(let heartbeat):
            let values = facts ?? heartbeat
            self.known.facts[id] = values
            self.members[id]?.address = values[path: "ipaddress"]?.stringValue ?? member.address
            self.members[id]?.phase = .up
            var actions: [Action] = []
            if let address = values[path: "ipaddress"] {
                actions.append(.recordFact(record.id, name: "ipaddress", value: address))
            }
            actions.append(.report(.agentUp(member: id.description, address: self.members[id]?.address)))
            return actions + self.advance()
        case .finishing:
            if let facts { self.known.facts[id] = facts }
            return self.enter(id, .configured) + [.report(.configured(member: id.description))] + self.advance()
        default:
            return []
        }
    }

    /// The record of the member's job: new, or the one an earlier run left (a job already
    /// answered is not sent again; one recorded or sent is sent again under its id).
    mutating func jobRecorded(_ id: MemberID, _ job: JobRecord) -> [Action] {
        guard let member = self.members[id], member.phase == .recordingJob, let record = member.record, let agent = member.agent else { return [] }
        switch job.state {
        case .succeeded:
            let result = job.result.flatMap { try? $0.decode(as: JobResult.self) } ?? JobResult(jobID: job.id, status: .succeeded, services: [])
            return self.finishJob(id, jobID: job.id, result: result, alreadyRecorded: true)
        case .failed:
            return self.fail(id, "its job \(job.id) failed earlier") + self.advance()
        case .recorded, .sent:
            var send = (try? job.payload.decode(as: ConfigurationJob.self)) ?? self.draft(member.resolved ?? [])
            send.jobID = job.id
            return self.enter(id, .configuring(jobID: job.id))
                + [
                    .recordFact(record.id, name: Launcher.waitingFact, value: .list([])),
                    .sendJob(id, send, to: agent),
                    .transitionJob(job.id, to: .sent, result: nil),
                    .report(.configuring(member: id.description, jobID: job.id)),
                ]
        }
    }

    mutating func jobAnswered(_ id: MemberID, _ answer: JobAnswer) -> [Action] {
        guard case .configuring(let jobID) = self.members[id]?.phase else { return [] }
        switch answer {
        case .result(let result):
            self.members[id]?.result = result
            return self.finishJob(id, jobID: jobID, result: result, alreadyRecorded: false)
        case .refused(let reason):
            return [.transitionJob(jobID, to: .failed, result: .error(reason))] + self.fail(id, reason) + self.advance()
        }
    }

    /// No answer within the job timeout.
    mutating func jobLost(_ id: MemberID) -> [Action] {
        self.jobAnswered(id, .refused("no answer to its job within the job timeout"))
    }

    /// The wait budget counts from `now`.
    mutating func waitBudgetArmed(now: Duration) -> [Action] {
        guard case .watching(nil) = self.state else { return [] }
        self.state = .watching(deadline: now + self.configuration.waitBudget)
        return []
    }

    /// Time passed: once the wait budget is spent, nothing waits silently any longer.
    mutating func tick(now: Duration) -> [Action] {
        guard case .watching(let armed?) = self.state, now >= armed else { return [] }
        let budget = self.configuration.waitBudget
        var actions: [Action] = []
        for id in self.order.sorted() {
            guard let member = self.members[id] else { continue }
            switch member.phase {
            case .awaitingAgent, .readingFacts:
                let directory = self.configuration.workDirectories[id] ?? "its work directory"
                actions += self.fail(id, "blocked: its agent never came up within \(budget) (see \(directory)/agent.log)")
            case .up:
                actions += self.fail(id, "blocked: waited \(budget) for " + member.waits.map(\.description).joined(separator: ", "))
            default:
                continue
            }
        }
        return actions + self.advance()
    }

    // MARK: - Steps

    /// Prepares the next member in plan order, skipping those recovered as failed.
    private mutating func prepareNext() -> [Action] {
        guard case .preparing(var next) = self.state else { return [] }
        while next < self.order.count, self.members[self.order[next]]?.phase.isFailed == true { next += 1 }
        guard next < self.order.count else {
            self.state = .watching(deadline: nil)
            return self.armOnceStarted() + self.advance()
        }
        self.state = .preparing(next: next)
        return self.prepare(self.order[next])
    }

    private mutating func prepare(_ id: MemberID) -> [Action] {
        guard let member = self.members[id] else { return [] }
        switch member.phase {
        case .unrecorded:
            return [.recordInstance(id, provider: member.plan.provider)]
        case .recorded:
            return self.start(id)
        case .locating:
            guard let record = member.record else { return [] }
            return [.findInstance(id, instanceID: record.id, handle: Self.handle(record))]
        case .failed:
            return self.preparedOne()
        default:
            return []
        }
    }

    /// The member being prepared is started, found or failed: on to the next.
    private mutating func preparedOne() -> [Action] {
        guard case .preparing(let next) = self.state else { return [] }
        self.state = .preparing(next: next + 1)
        return self.prepareNext()
    }

    private mutating func start(_ id: MemberID) -> [Action] {
        guard let member = self.members[id], let record = member.record else { return [] }
        return [.report(.starting(member: id.description, instanceID: Launcher.instanceID(record)))]
            + self.enter(id, .starting) + [.startInstance(id, instanceID: record.id, ordinal: member.ordinal)] + self.preparedOne()
    }

    /// `armWaitBudget`, once: when every member is prepared and no start is still under way.
    private mutating func armOnceStarted() -> [Action] {
        guard case .watching(nil) = self.state, !self.budgetRequested,
            !self.members.values.contains(where: { $0.phase == .starting })
        else { return [] }
        self.budgetRequested = true
        return [.armWaitBudget]
    }

    /// Resolves what the known values allow: jobs for members whose parameters are all
    /// known, what the others wait for, blocked members; and the end once all are done.
    private mutating func advance() -> [Action] {
        var actions: [Action] = []
        let resolution = self.configuration.plan.resolve(with: self.known)
        for id in self.order {
            guard let member = self.members[id], member.phase == .up, let record = member.record else { continue }
            switch resolution[id] {
            case .ready(let services):
                self.members[id]?.resolved = services
                self.members[id]?.phase = .recordingJob
                // A re-configuration a crash interrupted is the job that counts: sent again as recorded.
                let interrupted = member.jobs
                    .filter { $0.name != Launcher.jobName && ($0.state == .recorded || $0.state == .sent) }
                    .max { $0.createdAt < $1.createdAt }
                if let interrupted {
                    actions += self.jobRecorded(id, interrupted)
                } else {
                    actions.append(.recordJob(id, instanceID: record.id, name: Launcher.jobName, draft: self.draft(services)))
                }
            case .waiting(let requirements):
                if requirements != member.waits {
                    self.members[id]?.waits = requirements
                    actions.append(.recordFact(record.id, name: Launcher.waitingFact, value: .list(requirements.map { .string($0.description) })))
                    actions.append(.report(.waiting(member: id.description, on: requirements.map(\.description))))
                }
                if let dead = requirements.first(where: { $0.source.map { self.members[$0]?.phase.isFailed ?? false } ?? false }),
                    let source = dead.source
                {
                    actions += self.fail(id, "blocked: needs \(dead), but \(source) failed")
                }
            case nil:
                break
            }
        }
        return actions + self.finishIfDone()
    }

    private mutating func finishIfDone() -> [Action] {
        guard case .watching = self.state, self.members.values.allSatisfy(\.phase.isFinished) else { return [] }
        self.state = .finished
        let outcomes = self.table()
        let configured = self.members.values.allSatisfy { $0.phase == .configured }
        let generation = self.configuration.generation
        var actions: [Action] = []
        if configured {
            if generation.status != .active { actions.append(.activateGeneration(generation.id)) }
            actions.append(.setDeploymentStatus(.configured, reason: nil))
        } else {
            let reasons = outcomes.filter { $0.state != "configured" }.map { "\($0.member): \($0.reason ?? $0.state)" }.joined(separator: "; ")
            if generation.status == .pending {
                actions.append(.failGeneration(generation.id, reason: reasons))
            } else {
                actions.append(.setDeploymentStatus(.failed, reason: reasons))
            }
        }
        let result = LaunchResult(
            deployment: self.deployment, environment: self.configuration.environment, generation: generation.number,
            configured: configured, members: outcomes)
        return actions + [.report(.finished(configured: configured)), .finish(result)]
    }

    /// A job answered (or found answered): recorded, then the member's facts are read again.
    private mutating func finishJob(_ id: MemberID, jobID: String, result: JobResult, alreadyRecorded: Bool) -> [Action] {
        guard let member = self.members[id], let agent = member.agent else { return [] }
        self.members[id]?.result = result
        let succeeded = result.status == .succeeded
        var actions: [Action] = []
        if !alreadyRecorded { actions.append(.transitionJob(jobID, to: succeeded ? .succeeded : .failed, result: .result(result))) }
        guard succeeded else {
            let failing = result.services.last
            let detail = failing.map { "service \($0.name) exited \($0.exitCode): " + Self.lastLine($0.stderr.isEmpty ? $0.stdout : $0.stderr) } ?? ""
            return actions + self.fail(id, "job \(result.status.rawValue)\(detail.isEmpty ? "" : ", " + detail)") + self.advance()
        }
        for service in member.plan.services { self.known.markCompleted(id, service: service.name) }
        self.members[id]?.phase = .finishing(jobID: jobID)
        return actions + [.refreshFacts(id, agent)]
    }

    private mutating func fail(_ id: MemberID, _ reason: String) -> [Action] {
        self.enter(id, .failed(reason), reason: reason) + [.report(.failed(member: id.description, reason: reason))]
    }

    /// Puts the member in `phase` and moves its stored instance to the state the phase implies.
    private mutating func enter(_ id: MemberID, _ phase: MemberPhase, handle: InstanceHandle? = nil, address: String? = nil, reason: String? = nil) -> [Action] {
        guard var member = self.members[id] else { return [] }
        member.phase = phase
        var actions: [Action] = []
        if var record = member.record, let target = phase.instanceState {
            for state in MemberPhase.moves(from: record.state, to: target) {
                let carries = state == .started || state == .failed
                actions.append(
                    .transitionInstance(
                        record.id, to: state, handle: carries ? handle : nil, address: carries ? address : nil,
                        reason: state == .failed ? reason : nil))
                record.state = state
                if state == .started, let handle {
                    record.providerHandle = Launcher.encode(handle)
                    record.address = handle.address
                }
                if state == .failed { record.failureReason = reason }
            }
            member.record = record
        }
        self.members[id] = member
        return actions
    }

    private func draft(_ services: [ResolvedService]) -> ConfigurationJob {
        let timeout = Double(self.configuration.jobTimeout.components.seconds)
        return ConfigurationJob(
            jobID: "-", deployment: "\(self.deployment)@\(self.configuration.environment)", services: services.map(\.spec),
            timeoutSeconds: max(1, timeout))
    }

    // MARK: - The table

    /// Every member's outcome, in plan order. Before the end (an interrupted roll-out),
    /// members not finished are `pending`.
    func table() -> [MemberOutcome] {
        self.order.compactMap { self.members[$0] }.map(Self.outcome)
    }

    static func outcome(_ member: Member) -> MemberOutcome {
        let results = Dictionary((member.result?.services ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let services = member.plan.services.map { service in
            let resolved = member.resolved?.first { $0.name == service.name }
            let result = results[service.name]
            return MemberOutcome.Service(
                name: service.name, parameters: resolved?.maskedParameters ?? [:], exitCode: result?.exitCode,
                output: result.map { lastLine($0.stdout.isEmpty ? $0.stderr : $0.stdout) })
        }
        let state: String
        var reason: String?
        switch member.phase {
        case .configured: state = "configured"
        case .failed(let why):
            state = why.hasPrefix("blocked") ? "blocked" : "failed"
            reason = why
        default: state = "pending"
        }
        return MemberOutcome(
            member: member.plan.member.description, instanceID: member.record.map(Launcher.instanceID) ?? "",
            address: member.address, state: state, services: services, reason: reason,
            waitingFor: member.phase == .configured ? [] : member.waits.map(\.description))
    }

    // MARK: - Reading records

    static func handle(_ record: InstanceRecord) -> InstanceHandle? { Launcher.handle(record) }

    /// The agent serving an instance: the one its handle names, else `conductor:agent:<instance id>`.
    static func agentName(of record: InstanceRecord, handle: InstanceHandle? = nil) -> AgentName? {
        if let named = (handle ?? Launcher.handle(record))?.agent, let agent = AgentName(named) { return agent }
        return try? AgentName(instance: Launcher.instanceID(record))
    }

    static func lastLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
    }
}
