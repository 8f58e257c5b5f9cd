import AMQPClient
import Foundation
import Logging
import Mesh
import MeshClient

/// One member during a roll-out.
struct MemberRuntime {
    enum Phase: Equatable {
        /// Started (or found running); its agent has not been heard yet.
        case starting
        /// Its agent is up and its facts are known.
        case up
        case sent(jobID: String)
        case configured
        case failed(String)
        /// A halted (simulated crash) launch left it here.
        case pending

        var isFinished: Bool {
            switch self {
            case .configured, .failed: true
            default: false
            }
        }
    }

    var plan: MemberPlan
    var ordinal: Int
    var record: InstanceRecord
    var agent: AgentName
    var address: String?
    var phase: Phase = .starting
    var resolved: [ResolvedService]?
    var result: JobResult?
    var waits: [Requirement] = []

    var instanceID: String { Launcher.instanceID(self.record) }
}

/// Job answers, filled by the collecting tasks and drained by the loop.
final class JobAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [(MemberID, MeshMessage?)] = []

    func append(_ member: MemberID, _ message: MeshMessage?) { self.lock.withLock { self.answers.append((member, message)) } }

    func drain() -> [(MemberID, MeshMessage?)] {
        self.lock.withLock {
            defer { self.answers = [] }
            return self.answers
        }
    }
}

extension Launcher {
    func rollOut(_ plan: ResolutionPlan, generation: GenerationRecord) async throws -> LaunchResult {
        let environment = plan.environment ?? "default"
        let actor = self.options.actor
        self.progress(.recorded(deployment: plan.deployment, environment: environment, generation: generation.number, members: plan.members.count))

        var known = KnownValues()
        for (id, spec) in plan.secrets.sorted(by: { $0.key < $1.key }) {
            known.secrets[id] = try await self.store.secret(
                deployment: plan.deployment, environment: environment, name: id.rawValue, actor: actor, generate: { spec.generate() }
            ).value
        }

        // Watch heartbeats before any agent starts, so none is missed.
        let console = try await MeshConsole.connect(self.options.console, signer: self.options.signer)
        do {
            let result = try await self.rollOut(plan, generation: generation, environment: environment, known: known, console: console)
            try? await console.close()
            return result
        } catch {
            try? await console.close()
            throw error
        }
    }

    private func rollOut(
        _ plan: ResolutionPlan, generation: GenerationRecord, environment: String, known: KnownValues, console: MeshConsole
    ) async throws -> LaunchResult {
        let actor = self.options.actor
        var known = known
        let watch = try await console.watchHeartbeats()

        // 1. Instances: recorded first, then started (or found running).
        var members: [MemberID: MemberRuntime] = [:]
        var byInstance: [String: MemberID] = [:]
        for (ordinal, member) in plan.members.enumerated() {
            let record = try await self.store.recordInstanceIntent(
                generationID: generation.id, member: member.member.description, provider: member.provider, actor: actor)
            var runtime = MemberRuntime(plan: member, ordinal: ordinal, record: record, agent: try Self.agentName(of: record))
            try await self.ensureStarted(&runtime, plan: plan, environment: environment)
            // A provider may have placed it on an agent that already ran under its own name.
            runtime.agent = try Self.agentName(of: runtime.record)
            byInstance[runtime.agent.instance] = member.member
            members[member.member] = runtime
        }

        // 2. The loop: heartbeats -> facts -> resolve -> jobs -> answers, until every
        //    member is configured or failed, or the budget is spent.
        let answers = JobAnswers()
        let deadline = ContinuousClock.now + self.options.waitBudget
        var jobsSent = 0
        var halted = false
        try await withThrowingTaskGroup(of: Void.self) { collectors in
            defer { collectors.cancelAll() }
            while true {
                // Heartbeats: a member's agent is up; its facts come with a refresh call.
                var next = try await watch.next(timeout: .milliseconds(100))
                while let info = next {
                    if let id = byInstance[info.name.instance], var runtime = members[id], runtime.phase == .starting {
                        let facts = await Self.facts(of: info, console: console)
                        known.facts[id] = facts
                        runtime.address = facts[path: "ipaddress"]?.stringValue ?? runtime.address
                        if let address = facts[path: "ipaddress"] {
                            try await self.store.recordFact(instanceID: runtime.record.id, name: "ipaddress", value: address)
                        }
                        runtime.phase = .up
                        members[id] = runtime
                        self.progress(.agentUp(member: id.description, address: runtime.address))
                    }
                    next = try await watch.next(timeout: .milliseconds(1))
                }

                // Job answers.
                for (id, message) in answers.drain() {
                    guard var runtime = members[id], case .sent(let jobID) = runtime.phase else { continue }
                    switch Self.jobResult(message) {
                    case .success(let result):
                        runtime.result = result
                        try await self.finish(&runtime, jobID: jobID, result: result, known: &known, console: console)
                    case .failure(let reason):
                        try await self.store.transitionJob(jobID, to: .failed, result: .map(["error": .string(reason.text)]), actor: actor)
                        try await self.fail(&runtime, reason.text)
                    }
                    members[id] = runtime
                }

                // Resolve and send what is complete; name what the rest waits for.
                let resolution = plan.resolve(with: known)
                for member in plan.members {
                    guard var runtime = members[member.member], runtime.phase == .up else { continue }
                    switch resolution[member.member] {
                    case .ready(let services):
                        runtime.resolved = services
                        try await self.send(&runtime, services: services, plan: plan, environment: environment, known: &known, console: console, collectors: &collectors, answers: answers)
                        if case .sent = runtime.phase { jobsSent += 1 }
                    case .waiting(let requirements):
                        if requirements != runtime.waits {
                            runtime.waits = requirements
                            try await self.store.recordFact(
                                instanceID: runtime.record.id, name: Self.waitingFact, value: .list(requirements.map { .string($0.description) }))
                            self.progress(.waiting(member: member.member.description, on: requirements.map(\.description)))
                        }
                        if let dead = requirements.first(where: { $0.source.map { members[$0]?.phase.isFailed ?? false } ?? false }) {
                            try await self.fail(&runtime, "blocked: needs \(dead), but \(dead.source!) failed")
                        }
                    case nil:
                        break
                    }
                    members[member.member] = runtime
                }

                if let halt = self.options.haltAfterSendingJobs, jobsSent >= halt {
                    // As if killed here: drop the bus (which also ends the collectors).
                    halted = true
                    try? await console.close()
                    return
                }
                if members.values.allSatisfy(\.phase.isFinished) { return }

                // Budgets: nothing waits silently forever.
                if ContinuousClock.now >= deadline {
                    for id in members.keys.sorted() {
                        guard var runtime = members[id] else { continue }
                        switch runtime.phase {
                        case .starting:
                            try await self.fail(&runtime, "blocked: its agent never came up within \(self.options.waitBudget) (see \(self.workDirectory(plan, environment: environment, member: id))/agent.log)")
                        case .up:
                            try await self.fail(&runtime, "blocked: waited \(self.options.waitBudget) for " + runtime.waits.map(\.description).joined(separator: ", "))
                        default:
                            continue
                        }
                        members[id] = runtime
                    }
                }
            }
        }

        let outcomes = plan.members.compactMap { members[$0.member] }.map { Self.outcome($0, halted: halted) }
        let configured = !halted && members.values.allSatisfy { $0.phase == .configured }
        if halted {
            return LaunchResult(deployment: plan.deployment, environment: environment, generation: generation.number, configured: false, members: outcomes)
        }
        if configured {
            if generation.status != .active { try await self.store.activateGeneration(generation.id, actor: actor) }
            try await self.store.setDeploymentStatus(plan.deployment, environment: environment, to: .configured, reason: nil, actor: actor)
        } else {
            let reasons = outcomes.filter { $0.state != "configured" }.map { "\($0.member): \($0.reason ?? $0.state)" }.joined(separator: "; ")
            if generation.status == .pending {
                try await self.store.failGeneration(generation.id, reason: reasons, actor: actor)
            } else {
                try await self.store.setDeploymentStatus(plan.deployment, environment: environment, to: .failed, reason: reasons, actor: actor)
            }
        }
        self.progress(.finished(configured: configured))
        return LaunchResult(deployment: plan.deployment, environment: environment, generation: generation.number, configured: configured, members: outcomes)
    }

    // MARK: - Steps

    /// Starts the member unless it runs already: by its recorded handle, or found by its
    /// instance id (a coordinator that died between asking and recording).
    private func ensureStarted(_ runtime: inout MemberRuntime, plan: ResolutionPlan, environment: String) async throws {
        let actor = self.options.actor
        let provider = self.providers[runtime.plan.provider]!
        let member = runtime.plan.member.description
        switch runtime.record.state {
        case .terminated, .failed:
            runtime.phase = .failed(runtime.record.failureReason ?? "instance \(runtime.record.state.rawValue)")
            return
        default:
            break
        }
        var running: InstanceHandle?
        if let handle = Self.handle(runtime.record), await provider.isAlive(handle) {
            running = handle
        } else if runtime.record.state != .recorded {
            running = await provider.locate(instanceID: runtime.instanceID)
        }
        if let running {
            runtime.address = running.address ?? runtime.record.address
            if runtime.record.state == .starting {
                runtime.record = try await self.store.transitionInstance(
                    runtime.record.id, to: .started, providerHandle: Self.encode(running), address: running.address, reason: nil, actor: actor)
            }
            self.progress(.started(member: member, address: runtime.address, reused: true))
            return
        }
        guard runtime.record.state == .recorded || runtime.record.state == .starting else {
            // Started once and now gone: starting it again would be a second instance.
            runtime.record = try await self.store.transitionInstance(
                runtime.record.id, to: .failed, providerHandle: nil, address: nil, reason: "the instance is gone (was \(runtime.record.state.rawValue))", actor: actor)
            runtime.phase = .failed(runtime.record.failureReason ?? "gone")
            return
        }
        self.progress(.starting(member: member, instanceID: runtime.instanceID))
        runtime.record = try await self.store.transitionInstance(runtime.record.id, to: .starting, providerHandle: nil, address: nil, reason: nil, actor: actor)
        let request = InstanceStartRequest(
            deployment: plan.deployment, environment: environment, member: member, ordinal: runtime.ordinal,
            instanceID: runtime.instanceID, brokerURL: self.options.agentBrokerURL, trustedUser: self.options.trustedUser,
            workDirectory: self.workDirectory(plan, environment: environment, member: runtime.plan.member),
            trustedKeys: self.options.signer.map { [$0.publicKey.description] } ?? [])
        do {
            let handle = try await provider.start(request)
            runtime.address = handle.address
            runtime.record = try await self.store.transitionInstance(
                runtime.record.id, to: .started, providerHandle: Self.encode(handle), address: handle.address, reason: nil, actor: actor)
            self.progress(.started(member: member, address: handle.address, reused: false))
        } catch {
            try await self.fail(&runtime, "\(error)")
        }
    }

    /// Records the job (its id is made once, here), then sends it with that id and
    /// collects the answer in a child task. A job already answered is not sent again.
    /// A re-configuration job that a crash left unanswered (recorded or sent) is the one
    /// that counts: it is sent again as recorded, under its id.
    private func send(
        _ runtime: inout MemberRuntime, services: [ResolvedService], plan: ResolutionPlan, environment: String,
        known: inout KnownValues, console: MeshConsole, collectors: inout ThrowingTaskGroup<Void, any Error>, answers: JobAnswers
    ) async throws {
        let actor = self.options.actor
        let timeout = Double(self.options.jobTimeout.components.seconds)
        let draft = ConfigurationJob(jobID: "-", deployment: "\(plan.deployment)@\(environment)", services: services.map(\.spec), timeoutSeconds: max(1, timeout))
        let interrupted = try await self.store.jobs(instanceID: runtime.record.id)
            .filter { $0.name != Self.jobName && ($0.state == .recorded || $0.state == .sent) }
            .max { $0.createdAt < $1.createdAt }
        let record: JobRecord
        if let interrupted {
            record = interrupted
        } else {
            record = try await self.store.recordJobIntent(
                instanceID: runtime.record.id, name: Self.jobName, payload: try MeshValue(encoding: draft), actor: actor)
        }
        switch record.state {
        case .succeeded:
            let result = record.result.flatMap { try? $0.decode(as: JobResult.self) } ?? JobResult(jobID: record.id, status: .succeeded, services: [])
            runtime.result = result
            try await self.finish(&runtime, jobID: record.id, result: result, known: &known, console: console, alreadyRecorded: true)
            return
        case .failed:
            try await self.fail(&runtime, "its job \(record.id) failed earlier")
            return
        case .recorded, .sent:
            break
        }
        // A replay sends what was recorded, under the recorded id.
        var job = (try? record.payload.decode(as: ConfigurationJob.self)) ?? draft
        job.jobID = record.id
        if runtime.record.state != .configuring {
            runtime.record = try await self.store.transitionInstance(runtime.record.id, to: .configuring, providerHandle: nil, address: nil, reason: nil, actor: actor)
        }
        try await self.store.recordFact(instanceID: runtime.record.id, name: Self.waitingFact, value: .list([]))
        let replyQueue = try await console.declareReplyQueue()
        try await console.sendJob(job, to: runtime.agent, replyQueue: replyQueue, correlationID: job.jobID)
        try await self.store.transitionJob(job.jobID, to: .sent, result: nil, actor: actor)
        runtime.phase = .sent(jobID: job.jobID)
        self.progress(.configuring(member: runtime.plan.member.description, jobID: job.jobID))
        let member = runtime.plan.member
        let jobTimeout = self.options.jobTimeout + .seconds(5)
        collectors.addTask {
            let replies = try await console.collect(replyQueue: replyQueue, correlationID: job.jobID, timeout: jobTimeout) { !$0.isEmpty }
            answers.append(member, replies.first)
        }
    }

    /// A job answered: record it, mark the services completed, and read the member's
    /// facts again (a service may have published one).
    private func finish(
        _ runtime: inout MemberRuntime, jobID: String, result: JobResult, known: inout KnownValues, console: MeshConsole,
        alreadyRecorded: Bool = false
    ) async throws {
        let actor = self.options.actor
        let succeeded = result.status == .succeeded
        if !alreadyRecorded {
            try await self.store.transitionJob(jobID, to: succeeded ? .succeeded : .failed, result: try MeshValue(encoding: result), actor: actor)
        }
        guard succeeded else {
            let failing = result.services.last
            let detail = failing.map { "service \($0.name) exited \($0.exitCode): " + Self.lastLine($0.stderr.isEmpty ? $0.stdout : $0.stderr) } ?? ""
            try await self.fail(&runtime, "job \(result.status.rawValue)\(detail.isEmpty ? "" : ", " + detail)")
            return
        }
        for service in runtime.plan.services { known.markCompleted(runtime.plan.member, service: service.name) }
        if let values = await Self.refresh(runtime.agent, console: console) {
            known.facts[runtime.plan.member] = values
        }
        if runtime.record.state != .configured {
            if runtime.record.state != .configuring {
                runtime.record = try await self.store.transitionInstance(runtime.record.id, to: .configuring, providerHandle: nil, address: nil, reason: nil, actor: actor)
            }
            runtime.record = try await self.store.transitionInstance(runtime.record.id, to: .configured, providerHandle: nil, address: nil, reason: nil, actor: actor)
        }
        runtime.phase = .configured
        self.progress(.configured(member: runtime.plan.member.description))
    }

    private func fail(_ runtime: inout MemberRuntime, _ reason: String) async throws {
        runtime.record = try await self.store.transitionInstance(runtime.record.id, to: .failed, providerHandle: nil, address: nil, reason: reason, actor: self.options.actor)
        runtime.phase = .failed(reason)
        self.progress(.failed(member: runtime.plan.member.description, reason: reason))
    }

    // MARK: - Reading answers

    struct Failure: Error { var text: String }

    static func jobResult(_ message: MeshMessage?) -> Result<JobResult, Failure> {
        guard let message else { return .failure(Failure(text: "no answer to its job within the job timeout")) }
        if message.opcode == .exception {
            let text = (try? message.decodeBody(ExceptionBody.self)).map(\.description) ?? "exception"
            return .failure(Failure(text: "the agent refused the job: \(text)"))
        }
        do {
            let response = try message.decodeBody(MethodResponse.self)
            return .success(try MeshValue.map(response.arguments).decode(as: JobResult.self))
        } catch {
            return .failure(Failure(text: "unreadable job answer: \(error)"))
        }
    }

    /// Every host fact of the agent (`refresh`); the heartbeat's attributes if it does not answer.
    static func facts(of info: AgentInfo, console: MeshConsole) async -> MeshValue {
        if let values = await refresh(info.name, console: console) { return values }
        return .map(info.attributes)
    }

    static func refresh(_ agent: AgentName, console: MeshConsole) async -> MeshValue? {
        guard let reply = try? await console.call(MethodRequest(methodName: MeshMethod.refresh), on: agent, timeout: .seconds(3)),
            reply.opcode == .methodResponse, let values = reply.body[path: "_arguments.values"], values.mapValue != nil
        else { return nil }
        return values
    }

    static func lastLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
    }

    static func outcome(_ runtime: MemberRuntime, halted: Bool) -> MemberOutcome {
        let results = Dictionary((runtime.result?.services ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let services = runtime.plan.services.map { service in
            let resolved = runtime.resolved?.first { $0.name == service.name }
            let result = results[service.name]
            return MemberOutcome.Service(
                name: service.name, parameters: resolved?.maskedParameters ?? [:], exitCode: result?.exitCode,
                output: result.map { lastLine($0.stdout.isEmpty ? $0.stderr : $0.stdout) })
        }
        let state: String
        var reason: String?
        switch runtime.phase {
        case .configured: state = "configured"
        case .failed(let why):
            state = why.hasPrefix("blocked") ? "blocked" : "failed"
            reason = why
        default: state = halted ? "pending" : "failed"
        }
        return MemberOutcome(
            member: runtime.plan.member.description, instanceID: runtime.instanceID, address: runtime.address, state: state,
            services: services, reason: reason, waitingFor: runtime.phase == .configured ? [] : runtime.waits.map(\.description))
    }
}

extension MemberRuntime.Phase {
    var isFailed: Bool {
        if case .failed = self { return true }
        return false
    }
}
