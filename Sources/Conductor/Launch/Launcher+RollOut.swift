import AMQPClient
import Foundation
import Logging
import Mesh
import MeshClient
import Synchronization

/// A test seam: called after each action the roll-out carried out; true stops the
/// roll-out right there, recording and sending nothing more, as a coordinator killed at
/// that point would (the crash tests). Not a production option.
typealias RollOutInterruption = @Sendable (RollOutStateMachine.Action) -> Bool

enum RollOutInterruptions {
    /// Stops once `count` jobs were sent and reported `configuring`.
    static func afterSendingJobs(_ count: Int) -> RollOutInterruption {
        let sent = SentJobs()
        return { action in
            guard case .report(.configuring) = action else { return false }
            return sent.count.withLock { sent in
                sent += 1
                return sent >= count
            }
        }
    }

    private final class SentJobs: Sendable {
        let count = Mutex(0)
    }
}

extension Launcher {
    /// Rolls a recorded generation out: reads what the store holds for it (nothing for a
    /// fresh launch), then drives a `RollOutStateMachine` to its end.
    func rollOut(_ plan: ResolutionPlan, generation: GenerationRecord) async throws -> LaunchResult {
        let environment = plan.environment ?? "default"
        let actor = self.options.actor
        var secrets: [SecretID: String] = [:]
        for (id, spec) in plan.secrets.sorted(by: { $0.key < $1.key }) {
            secrets[id] = try await self.store.secret(
                deployment: plan.deployment, environment: environment, name: id.rawValue, actor: actor, generate: { spec.generate() }
            ).value
        }
        let directories = plan.members.map { ($0.member, self.workDirectory(plan, environment: environment, member: $0.member)) }
        let configuration = RollOutStateMachine.Configuration(
            plan: plan, environment: environment, generation: generation, waitBudget: self.options.waitBudget,
            jobTimeout: self.options.jobTimeout, secrets: secrets,
            workDirectories: Dictionary(directories, uniquingKeysWith: { first, _ in first }))

        let console = try await MeshConsole.connect(self.options.console, signer: self.options.signer, answers: self.options.answerCheck, logger: self.logger)
        do {
            // Heartbeats are consumed before any agent starts, so none is missed.
            let heartbeats = try await console.heartbeats()
            var driver = RollOutDriver(launcher: self, plan: plan, console: console, machine: RollOutStateMachine(configuration))
            let result = try await driver.run(from: try await self.records(generationID: generation.id), heartbeats: heartbeats)
            try? await console.close()
            return result
        } catch {
            try? await console.close()
            throw error
        }
    }

    /// What the store holds for a generation: its instances, their jobs and facts.
    func records(generationID: Int64) async throws -> RollOutRecords {
        var records = RollOutRecords(instances: try await self.store.instances(generationID: generationID))
        for instance in records.instances {
            records.jobs[instance.id] = try await self.store.jobs(instanceID: instance.id)
            records.facts[instance.id] = try await self.store.facts(instanceID: instance.id)
        }
        return records
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

    static func refresh(_ agent: AgentName, console: MeshConsole) async -> MeshValue? {
        guard let reply = try? await console.call(MethodRequest(methodName: MeshMethod.refresh), on: agent, timeout: .seconds(3)),
            reply.opcode == .methodResponse, let values = reply.body[path: "_arguments.values"], values.mapValue != nil
        else { return nil }
        return values
    }

    static func lastLine(_ text: String) -> String { RollOutStateMachine.lastLine(text) }
}

/// Carries out the machine's actions one at a time (the only place a roll-out touches the
/// store, the providers and the bus) and feeds it what they returned, then the events of
/// the bus: consumed heartbeats, job answers, and a timer for the wait budget.
///
/// Members of a `DirectInstanceProvider` (phone-home) have no agent: the provider stands
/// in for the bus. Its contacts are fed to the machine as heartbeats, its `facts` answer
/// `refreshFacts`, its `deliver` answers `sendJob`; the machine cannot tell the difference.
struct RollOutDriver {
    typealias Action = RollOutStateMachine.Action

    enum Input: Sendable {
        case heartbeat(AgentInfo)
        case answer(MemberID, MeshMessage?)
        /// A direct provider's answer to a delivered job.
        case delivered(MemberID, Result<JobResult, DirectDeliveryFailure>)
        /// A provider's start returned: the handle, or why it failed.
        case started(MemberID, Result<InstanceHandle, StartFailure>)
        case tick
        case busLost(any Error)
    }

    private struct Interrupted: Error {}

    struct StartFailure: Error {
        var reason: String
    }

    let launcher: Launcher
    let plan: ResolutionPlan
    let console: MeshConsole
    var machine: RollOutStateMachine
    private let inputs: AsyncStream<Input>
    private let input: AsyncStream<Input>.Continuation
    private let origin = ContinuousClock.now

    init(launcher: Launcher, plan: ResolutionPlan, console: MeshConsole, machine: RollOutStateMachine) {
        self.launcher = launcher
        self.plan = plan
        self.console = console
        self.machine = machine
        (self.inputs, self.input) = AsyncStream.makeStream(of: Input.self)
    }

    private var now: Duration { self.origin.duration(to: .now) }
    private var actor: AuditActor { self.launcher.options.actor }
    private var environment: String { self.plan.environment ?? "default" }

    mutating func run(from records: RollOutRecords, heartbeats: Heartbeats) async throws -> LaunchResult {
        let input = self.input
        let firstTick = self.origin + self.launcher.options.waitBudget
        // Subscribed before any instance starts, like the heartbeats.
        let contacts = self.directProviders.map { $0.contacts() }
        do {
            return try await withThrowingTaskGroup(of: Void.self) { group in
                defer { group.cancelAll() }
                group.addTask {
                    do {
                        for try await heartbeat in heartbeats { input.yield(.heartbeat(heartbeat)) }
                    } catch {
                        input.yield(.busLost(error))
                    }
                }
                for stream in contacts {
                    group.addTask {
                        for await contact in stream {
                            if let heartbeat = Self.heartbeat(contact) { input.yield(heartbeat) }
                        }
                    }
                }
                group.addTask {
                    // The earliest the budget can end, then four times a second: it is armed
                    // once every member is started, which a slow provider delays.
                    var next = firstTick
                    while !Task.isCancelled {
                        try await Task.sleep(until: next)
                        input.yield(.tick)
                        next += .milliseconds(250)
                    }
                }
                if let result = try await self.carryOut(self.machine.recovered(records, now: .zero), group: &group) { return result }
                for await event in self.inputs {
                    let actions: [Action]
                    switch event {
                    case .heartbeat(let info):
                        actions = self.machine.heartbeat(from: info.name, attributes: .map(info.attributes))
                    case .answer(let member, nil):
                        actions = self.machine.jobLost(member)
                    case .answer(let member, let message):
                        switch Launcher.jobResult(message) {
                        case .success(let result): actions = self.machine.jobAnswered(member, .result(result))
                        case .failure(let failure): actions = self.machine.jobAnswered(member, .refused(failure.text))
                        }
                    case .delivered(let member, .success(let result)):
                        actions = self.machine.jobAnswered(member, .result(result))
                    case .delivered(let member, .failure(let failure)):
                        actions = self.machine.jobAnswered(member, .refused(failure.reason))
                    case .started(let member, .success(let handle)):
                        actions = self.machine.instanceStarted(member, handle) + self.handOver(member, handle)
                        await self.contactIfReported(member, handle)
                    case .started(let member, .failure(let failure)):
                        actions = self.machine.startFailed(member, reason: failure.reason)
                    case .tick:
                        actions = self.machine.tick(now: self.now)
                    case .busLost(let error):
                        throw error
                    }
                    if let result = try await self.carryOut(actions, group: &group) { return result }
                }
                throw CancellationError()
            }
        } catch is Interrupted {
            let environment = self.environment
            return LaunchResult(
                deployment: self.plan.deployment, environment: environment, generation: self.machine.configuration.generation.number,
                configured: false, members: self.machine.table())
        }
    }

    /// Each action, then (depth first) the actions the machine returns for its outcome.
    /// Returns the result once `.finish` was carried out.
    private mutating func carryOut(_ actions: [Action], group: inout ThrowingTaskGroup<Void, any Error>) async throws -> LaunchResult? {
        for action in actions {
            let next = try await self.perform(action, group: &group)
            if self.launcher.interruption?(action) == true { throw Interrupted() }
            if case .finish(let result) = action { return result }
            if let result = try await self.carryOut(next, group: &group) { return result }
        }
        return nil
    }

    private mutating func perform(_ action: Action, group: inout ThrowingTaskGroup<Void, any Error>) async throws -> [Action] {
        let store = self.launcher.store
        switch action {
        case .report(let event):
            self.launcher.progress(event)
            return []
        case .armWaitBudget:
            return self.machine.waitBudgetArmed(now: self.now)
        case .recordInstance(let member, let provider):
            let record = try await store.recordInstanceIntent(
                generationID: self.machine.configuration.generation.id, member: member.description, provider: provider, actor: self.actor)
            return self.machine.instanceRecorded(record)
        case .startInstance(let member, let instanceID, let ordinal):
            let provider = try self.provider(of: member)
            var request = InstanceStartRequest(
                deployment: self.plan.deployment, environment: self.environment, member: member.description, ordinal: ordinal,
                instanceID: instanceID.uuidString.lowercased(), brokerURL: self.launcher.options.agentBrokerURL,
                trustedUser: self.launcher.options.trustedUser,
                workDirectory: self.launcher.workDirectory(self.plan, environment: self.environment, member: member),
                trustedKeys: self.launcher.options.signer.map { [$0.publicKey.description] } ?? [])
            request.busReach = self.launcher.options.busReach
            let login = try await self.login(for: member, instanceID: instanceID, provider: provider)
            // In the background: the next member is prepared meanwhile (a remote start takes seconds).
            let input = self.input
            let console = self.console
            let accounts = self.launcher.options.accounts
            let prepared = request
            group.addTask {
                do {
                    var request = prepared
                    if let login, let accounts {
                        // The agent's own login and queues exist before it is told them.
                        try await accounts.create(login)
                        try await console.provisionQueues(for: login.agent)
                        request.brokerURL = login.url(from: request.brokerURL)
                    }
                    let handle = try await provider.start(request)
                    input.yield(.started(member, .success(handle)))
                } catch {
                    input.yield(.started(member, .failure(StartFailure(reason: "\(error)"))))
                }
            }
            return []
        case .findInstance(let member, let instanceID, let handle):
            let provider = try self.provider(of: member)
            var found: InstanceHandle?
            if let handle, await provider.isAlive(handle) {
                found = handle
            } else {
                found = await provider.locate(instanceID: instanceID.uuidString.lowercased())
            }
            // A bus brought back by fwd has the login again before the agent needs it.
            if found != nil, let login = try await self.login(for: member, instanceID: instanceID, provider: provider), let accounts = self.launcher.options.accounts {
                try await accounts.create(login)
                try await self.console.provisionQueues(for: login.agent)
            }
            if let found { await self.contactIfReported(member, found) }
            return self.machine.instanceFound(member, found)
        case .transitionInstance(let id, let state, let handle, let address, let reason):
            try await store.transitionInstance(
                id, to: state, providerHandle: handle.map(Launcher.encode), address: address, reason: reason, actor: self.actor)
            return []
        case .recordFact(let id, let name, let value):
            try await store.recordFact(instanceID: id, name: name, value: value)
            return []
        case .refreshFacts(let member, let agent):
            if let direct = self.direct(member) {
                return self.machine.factsRefreshed(member, await direct.facts(instanceID: agent.instance))
            }
            return self.machine.factsRefreshed(member, await Launcher.refresh(agent, console: self.console))
        case .recordJob(let member, let instanceID, let name, let draft):
            let record = try await store.recordJobIntent(instanceID: instanceID, name: name, payload: try MeshValue(encoding: draft), actor: self.actor)
            return self.machine.jobRecorded(member, record)
        case .sendJob(let member, let job, let agent):
            if let direct = self.direct(member) {
                let timeout = self.launcher.options.jobTimeout
                let input = self.input
                group.addTask {
                    let outcome = await direct.deliver(job, instanceID: agent.instance, timeout: timeout)
                    if !Task.isCancelled { input.yield(.delivered(member, outcome)) }
                }
                return []
            }
            let console = self.console
            let replyQueue = try await console.declareReplyQueue()
            let sentAt = console.connection.recoveryCount
            try await console.sendJob(job, to: agent, replyQueue: replyQueue, correlationID: job.jobID)
            let timeout = self.launcher.options.jobTimeout + .seconds(5)
            let input = self.input
            group.addTask {
                // A reply queue that cannot be read counts as no answer: the member fails, nothing hangs.
                // A job lost with a bus node (or its answer) goes again: the agent runs a job
                // id once and answers a second copy from its record.
                let replies = (try? await console.collect(
                    replyQueue: replyQueue, correlationID: job.jobID, from: agent, timeout: timeout,
                    resend: FailoverResend(sentAt: sentAt) { try await console.sendJob(job, to: agent, replyQueue: replyQueue, correlationID: job.jobID) }
                ) { !$0.isEmpty }) ?? []
                if !Task.isCancelled { input.yield(.answer(member, replies.first)) }
            }
            return []
        case .transitionJob(let id, let state, let result):
            let value: MeshValue? = switch result {
            case .result(let answer)?: try MeshValue(encoding: answer)
            case .error(let text)?: .map(["error": .string(text)])
            case nil: nil
            }
            try await store.transitionJob(id, to: state, result: value, actor: self.actor)
            return []
        case .activateGeneration(let id):
            try await store.activateGeneration(id, actor: self.actor)
            return []
        case .failGeneration(let id, let reason):
            try await store.failGeneration(id, reason: reason, actor: self.actor)
            return []
        case .setDeploymentStatus(let status, let reason):
            try await store.setDeploymentStatus(self.plan.deployment, environment: self.environment, to: status, reason: reason, actor: self.actor)
            return []
        case .finish:
            return []
        }
    }

    // MARK: - Agents' logins

    /// The member's own broker login, when the launch makes logins and its provider starts
    /// an agent: its password is a deployment secret, generated once, so a roll-forward
    /// gives the running agent the login it already has.
    private func login(for member: MemberID, instanceID: UUID, provider: any InstanceProvider) async throws -> AgentIdentity? {
        guard self.launcher.options.accounts != nil, provider.startsAgents else { return nil }
        let instance = instanceID.uuidString.lowercased()
        let password = try await self.launcher.store.secret(
            deployment: self.plan.deployment, environment: self.environment, name: AgentIdentity.secretName(instanceID: instance), actor: self.actor,
            generate: { LaunchBus.password() }
        ).value
        return AgentIdentity(agent: try AgentName(instance: instance), password: password)
    }

    // MARK: - Direct providers

    /// The distinct direct providers the plan's members use.
    private var directProviders: [any DirectInstanceProvider] {
        let names = Set(self.plan.members.map(\.provider))
        return names.sorted().compactMap { self.launcher.providers[$0] as? any DirectInstanceProvider }
    }

    private func direct(_ member: MemberID) -> (any DirectInstanceProvider)? {
        (try? self.provider(of: member)) as? any DirectInstanceProvider
    }

    /// A contact stands for the heartbeat of the agent the instance does not run.
    static func heartbeat(_ contact: DirectContact) -> Input? {
        guard let name = try? AgentName(instance: contact.instanceID) else { return nil }
        return .heartbeat(AgentInfo(name: name, epoch: 0, timestamp: 0, heartbeatInterval: 0, attributes: contact.facts.mapValue ?? [:]))
    }

    /// What the user has to do for a direct member just started (hand it its file).
    private func handOver(_ member: MemberID, _ handle: InstanceHandle) -> [Action] {
        guard let text = self.direct(member)?.handOver(handle, member: member.description) else { return [] }
        return [.report(.instructions(member: member.description, text: text))]
    }

    /// An instance that reported before this roll-out began (a `fwd`) made contact already:
    /// fed as a heartbeat once the machine has it waiting for one.
    private func contactIfReported(_ member: MemberID, _ handle: InstanceHandle) async {
        guard let direct = self.direct(member), let facts = await direct.facts(instanceID: handle.instanceID),
            let heartbeat = Self.heartbeat(DirectContact(instanceID: handle.instanceID, facts: facts))
        else { return }
        self.input.yield(heartbeat)
    }

    private func provider(of member: MemberID) throws -> any InstanceProvider {
        guard let name = self.plan.member(member)?.provider, let provider = self.launcher.providers[name] else {
            throw LaunchError(.unknownProvider, "no provider for \(member)")
        }
        return provider
    }
}
