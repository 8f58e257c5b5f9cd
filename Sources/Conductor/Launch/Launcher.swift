import AMQPClient
import Foundation
import Logging
import Mesh
import MeshClient

/// The coordinator's launch loop (ARCHITECTURE.md, "The data path of a launch"):
/// validate, record, start instances, watch their facts, resolve, send each member's job
/// once its parameters are complete, collect results, activate the generation.
///
/// Every step is recorded in the state store before it is carried out; `rollForward`
/// replays the same loop from the store, and the store's idempotent intents (one
/// instance per generation and member, one job per instance and name, with its id)
/// plus the provider's `locate` and the agent's job-id memory make a replay start
/// nothing twice and run nothing twice.
public struct Launcher: Sendable {
    public static let jobName = "configure"
    /// A fact the launcher records per instance: what it still waits for (status reads it).
    public static let waitingFact = "_waiting_for"

    public let store: any StateStore
    public let providers: [String: any InstanceProvider]
    public let options: LaunchOptions
    let logger: Logger
    let progress: @Sendable (LaunchEvent) -> Void
    /// Tests only: where a roll-out stops as if its coordinator were killed.
    let interruption: RollOutInterruption?

    public init(
        store: any StateStore, providers: [any InstanceProvider], options: LaunchOptions,
        logger: Logger = Logger(label: "conductor.launch", factory: { _ in SwiftLogNoOpLogHandler() }),
        progress: @escaping @Sendable (LaunchEvent) -> Void = { _ in }
    ) {
        self.init(store: store, providers: providers, options: options, logger: logger, progress: progress, interruption: nil)
    }

    /// The test seam: `interruption` sees every action the roll-out carries out and may stop it there.
    init(
        store: any StateStore, providers: [any InstanceProvider], options: LaunchOptions,
        logger: Logger = Logger(label: "conductor.launch", factory: { _ in SwiftLogNoOpLogHandler() }),
        progress: @escaping @Sendable (LaunchEvent) -> Void = { _ in }, interruption: RollOutInterruption?
    ) {
        self.store = store
        self.providers = Dictionary(providers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.options = options
        self.logger = logger
        self.progress = progress
        self.interruption = interruption
    }

    // MARK: - Entry points

    /// Validates (refusing before anything is recorded or started), records the
    /// deployment and its generation, then rolls it out.
    public func launch(_ request: LaunchRequest) async throws -> LaunchResult {
        let plan = try self.validatedPlan(request)
        try await self.checkAccounts()
        let environment = plan.environment ?? "default"
        let actor = self.options.actor
        return try await self.withLaunchLock(deployment: plan.deployment, environment: environment) {
            let before = try await self.store.deployment(plan.deployment, environment: environment)
            _ = try await self.store.ensureDeployment(plan.deployment, environment: environment, actor: actor)
            try await self.store.setDeploymentStatus(plan.deployment, environment: environment, to: .launching, reason: nil, actor: actor)
            // The deployable's own text and every script: an edited file makes a new generation.
            var hashInput = try Self.document(request) + "\n" + ((try? String(contentsOfFile: request.file, encoding: .utf8)) ?? "")
            for member in plan.members { for service in member.services { hashInput += "\n" + service.script } }
            // A terminated deployment's active generation cannot be started again: a new one.
            if let before, before.status == .terminated || before.status == .terminating { hashInput += "\nrelaunch \(Date().timeIntervalSince1970)" }
            let generation = try await self.store.recordGeneration(
                deployment: plan.deployment, environment: environment, document: try Self.document(request),
                documentHash: Self.fnv1a(hashInput), actor: actor)
            return try await self.rollOut(plan, generation: generation)
        }
    }

    /// `conductor fwd`: finishes the newest pending (or unfinished active) generation
    /// from what the store recorded.
    public func rollForward(deployment: String, environment: String) async throws -> LaunchResult {
        guard let pending = try await self.store.pendingWork(deployment: deployment, environment: environment),
            let generation = pending.generation
        else {
            throw LaunchError(.nothingPending, "nothing to roll forward for \(deployment)@\(environment)")
        }
        let request = try JSONDecoder().decode(LaunchRequest.self, from: Data(generation.document.utf8))
        let plan = try self.validatedPlan(request)
        try await self.checkAccounts()
        let actor = self.options.actor
        return try await self.withLaunchLock(deployment: deployment, environment: environment) {
            try await self.store.appendAudit(
                actor: actor, action: "deployment.roll_forward", subject: "deployment:\(deployment)@\(environment)", outcome: .succeeded,
                deployment: deployment, environment: environment, detail: .map(["generation": .int(Int64(generation.number))]))
            try await self.store.setDeploymentStatus(deployment, environment: environment, to: .launching, reason: nil, actor: actor)
            return try await self.rollOut(plan, generation: generation)
        }
    }

    /// Before anything is recorded or started: the bus's management API answers and may
    /// make the agents' logins (a missing plugin, a wrong login, not an administrator).
    func checkAccounts() async throws {
        do {
            try await self.options.accounts?.check()
        } catch {
            throw LaunchError(
                .busAdministration,
                "\(error.message) (each agent gets a login of its own, made through the broker's management API; give --bus-admin http://USER:PASSWORD@HOST:PORT, or --shared-agent-login to give every agent the --agent-broker login)")
        }
    }

    /// Stops every instance of the deployment (all generations) and keeps the record.
    /// Returns the members stopped.
    @discardableResult
    public func terminate(deployment: String, environment: String) async throws -> [String] {
        guard let record = try await self.store.deployment(deployment, environment: environment) else {
            throw LaunchError(.notFound, "no deployment \(deployment)@\(environment) in \(self.options.stateFile)")
        }
        // Terminating twice is not an error: there is nothing left to stop.
        guard record.status != .terminated else { return [] }
        let actor = self.options.actor
        try await self.store.setDeploymentStatus(deployment, environment: environment, to: .terminating, reason: nil, actor: actor)
        var running: [InstanceRecord] = []
        for generation in try await self.store.generations(deployment: deployment, environment: environment) {
            running += try await self.store.instances(generationID: generation.id).filter { $0.state != .terminated }
        }
        // Stopped all at once: each agent takes its grace period to finish, and one after
        // another that added up to seconds per ten instances.
        let providers = self.providers
        try await withThrowingTaskGroup(of: Void.self) { group in
            for instance in running {
                // A provider the deployable defined (an SSH pool) is not known without
                // it; its handles carry what reaches the instance again.
                guard let provider = providers[instance.provider] ?? Self.handle(instance).flatMap(Self.handleOnlyProvider) else { continue }
                group.addTask {
                    if let handle = Self.handle(instance) {
                        try await provider.stop(handle)
                    } else if let found = await provider.locate(instanceID: Self.instanceID(instance)) {
                        try await provider.stop(found)
                    }
                }
            }
            try await group.waitForAll()
        }
        var stopped: [String] = []
        for instance in running {
            try await self.store.transitionInstance(instance.id, to: .terminated, providerHandle: nil, address: nil, reason: nil, actor: actor)
            stopped.append(instance.member)
        }
        try await self.store.setDeploymentStatus(deployment, environment: environment, to: .terminated, reason: nil, actor: actor)
        try await self.removeLogins(of: running)
        return stopped
    }

    /// Deletes the stopped agents' own logins (the broker closes what they still had open)
    /// and their queues, so a copy of a login no longer gets onto the bus. Members placed on
    /// agents that run anyway (`provider: agents`) keep theirs. Every login is tried; the
    /// error names those that stay.
    private func removeLogins(of instances: [InstanceRecord]) async throws {
        guard let accounts = self.options.accounts else { return }
        let agents = instances.filter { (self.providers[$0.provider] ?? Self.handle($0).flatMap(Self.handleOnlyProvider))?.startsAgents ?? true }
            .compactMap { try? AgentName(instance: Self.instanceID($0)) }
        guard !agents.isEmpty else { return }
        var failures: [String] = []
        let console = try? await MeshConsole.connect(self.options.console, logger: self.logger)
        for agent in agents {
            do {
                try await accounts.remove(user: agent.brokerUser)
                try await console?.removeQueues(for: agent)
            } catch {
                failures.append("\(agent.brokerUser): \(error)")
            }
        }
        try? await console?.close()
        guard failures.isEmpty else {
            throw LaunchError(.busAdministration, "the instances are stopped, but these agents' logins are still on the bus: " + failures.joined(separator: "; "))
        }
    }

    // MARK: - Validation and records

    func validatedPlan(_ request: LaunchRequest) throws -> ResolutionPlan {
        let report = DeployableLoader.load(
            file: request.file, environment: request.environment, settings: request.settings.map { ($0.name, $0.value) })
        guard report.isValid, let plan = report.plan else {
            let count = report.errors.count
            throw LaunchError(.invalid, "\(request.file) is not valid (\(count) error\(count == 1 ? "" : "s")); nothing was started", errors: report.errors)
        }
        for member in plan.members where self.providers[member.provider] == nil {
            if plan.provider(member.provider)?.settings.kind == PhoneHomeProvider.kind {
                throw LaunchError(
                    .unknownProvider,
                    "\(member.member) phones home (provider '\(member.provider)', kind phone-home), which needs the coordinator's HTTP API: give --http HOST:PORT (e.g. --http 0.0.0.0:8080); nothing was started")
            }
            throw LaunchError(
                .unknownProvider,
                "\(member.member) uses provider '\(member.provider)', which this conductor does not have (known: \(self.providers.keys.sorted().joined(separator: ", "))); nothing was started")
        }
        // Instances that phone home need the HTTP API, not the bus.
        let remote = plan.members.filter { plan.provider($0.provider).map { $0.settings.kind != PhoneHomeProvider.kind } ?? false }
        if self.options.busReach == .loopbackOnly, !remote.isEmpty {
            let names = remote.map { "\($0.member) (provider \($0.provider))" }.joined(separator: ", ")
            throw LaunchError(
                .invalid,
                "\(names) run on other machines, which cannot reach a bus that listens on loopback only; launch with --bus-listen 0.0.0.0 (or an address of this machine they reach) and --bus-tls-cert/--bus-tls-key, or give --broker; nothing was started")
        }
        return plan
    }

    static func document(_ request: LaunchRequest) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(request), as: UTF8.self)
    }

    static func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    static func instanceID(_ record: InstanceRecord) -> String { record.id.uuidString.lowercased() }

    /// The agent serving an instance: the one its handle names (an agent that already ran),
    /// else `conductor:agent:<instance id>`.
    static func agentName(of record: InstanceRecord) throws -> AgentName {
        if let named = handle(record)?.agent, let agent = AgentName(named) { return agent }
        return try AgentName(instance: instanceID(record))
    }

    /// A provider that reaches an instance from its handle alone, by the handle's kind.
    static func handleOnlyProvider(_ handle: InstanceHandle) -> (any InstanceProvider)? {
        switch handle.kind {
        case SSHProvider.kind?: SSHProvider(handlesOnlyNamed: SSHProvider.kind)
        case EC2Provider.kind?: EC2Provider(handlesOnlyNamed: EC2Provider.kind)
        case PhoneHomeProvider.kind?: PhoneHomeProvider(handlesOnlyNamed: PhoneHomeProvider.kind)
        default: nil
        }
    }

    static func handle(_ record: InstanceRecord) -> InstanceHandle? {
        guard let text = record.providerHandle else { return nil }
        return try? JSONDecoder().decode(InstanceHandle.self, from: Data(text.utf8))
    }

    static func encode(_ handle: InstanceHandle) -> String {
        String(decoding: (try? JSONEncoder().encode(handle)) ?? Data(), as: UTF8.self)
    }

    func workDirectory(_ plan: ResolutionPlan, environment: String, member: MemberID) -> String {
        let name = member.index.map { "\(member.instance)-\($0)" } ?? member.instance
        return "\(self.options.stateDirectory)/deployments/\(plan.deployment)@\(environment)/\(name)"
    }
}
