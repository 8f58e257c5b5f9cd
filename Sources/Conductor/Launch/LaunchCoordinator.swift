import AMQPClient
import Foundation
import Mesh
import ServiceLifecycle

/// Launches deployables on behalf of callers, one coordinator for many deployments: the
/// body of `conductor serve` and of a foreground `conductor launch`. Its methods
/// (`LaunchMethod`) are registered on the coordinator's bus endpoint; the same calls serve
/// an in-process caller.
///
/// `run()` owns every launch it accepted (a child task each) and, every `watchInterval`,
/// a re-configuration pass over the deployments it configured (`Launcher.reconfigure`).
/// On graceful shutdown it stops taking launches and ends; `stopAll()` terminates what
/// it launched.
public actor LaunchCoordinator: ServiceLifecycle.Service {
    public struct Configuration: Sendable {
        public var stateDirectory: String
        /// The coordinator's own bus login; its user is the agents' trusted user.
        public var console: AMQPConnectionConfiguration
        /// What the instances connect with.
        public var agentBrokerURL: String
        /// Whether instances on other machines reach that bus.
        public var busReach: BusReach = .loopbackOnly
        public var trustedUser: String
        /// How often configured deployments are checked for changed source facts; nil: never.
        public var watchInterval: Duration?
        /// The providers a launch may use (the local one gets the request's address prefix).
        public var providers: @Sendable (LaunchRequest) -> [any InstanceProvider]
        /// Every progress line of every launch, for the coordinator's own output.
        public var log: @Sendable (String) -> Void
        /// Called once a launch is accepted, before any instance is started.
        public var accepted: @Sendable (LaunchTicket) -> Void = { _ in }
        /// Makes each agent its own login (`LaunchOptions.accounts`).
        public var accounts: BusAccounts?

        public init(
            stateDirectory: String, console: AMQPConnectionConfiguration, agentBrokerURL: String, trustedUser: String? = nil,
            watchInterval: Duration? = .seconds(5),
            providers: (@Sendable (LaunchRequest) -> [any InstanceProvider])? = nil,
            log: @escaping @Sendable (String) -> Void = { _ in }
        ) {
            self.stateDirectory = stateDirectory
            self.console = console
            self.agentBrokerURL = agentBrokerURL
            self.trustedUser = trustedUser ?? console.username
            self.watchInterval = watchInterval
            self.providers = providers ?? { LaunchCoordinator.standardProviders($0, console: console) }
            self.log = log
        }
    }

    /// `local` on the request's `--local-addresses` (refused where another deployment holds
    /// them), else on 127.0.0 or the first free /24 above it; and `agents` on the
    /// coordinator's bus. `phoneHome`: the HTTP API's desk, when one serves (`--http`).
    public static func standardProviders(
        _ request: LaunchRequest, console: AMQPConnectionConfiguration, phoneHome: PhoneHomeDesk? = nil
    ) -> [any InstanceProvider] {
        [LocalProvider(addressPrefix: request.localAddresses.flatMap(LocalProvider.addressPrefix)), AgentsProvider(console: console)]
            + Self.definedProviders(request, phoneHome: phoneHome)
    }

    /// The providers the request's deployable defines (`providers:`), each with the members
    /// it places; none when the file no longer reads (terminate then goes by the handles).
    /// A `phone-home` provider only with the HTTP API's desk.
    public static func definedProviders(_ request: LaunchRequest, phoneHome: PhoneHomeDesk? = nil) -> [any InstanceProvider] {
        guard request.file != "/",
            let plan = DeployableLoader.load(
                file: request.file, environment: request.environment, settings: request.settings.map { ($0.name, $0.value) }
            ).plan
        else { return [] }
        return plan.providers.compactMap { definition -> (any InstanceProvider)? in
            switch definition.settings {
            case .ssh(let pool):
                SSHProvider(name: definition.name, pool: pool, members: plan.members(onProvider: definition.name).map(\.description))
            case .ec2(let settings):
                EC2Provider(name: definition.name, settings: settings, coordinator: phoneHome)
            case .phoneHome(let settings):
                phoneHome.map { PhoneHomeProvider(name: definition.name, settings: settings, desk: $0) }
            }
        }
    }

    public let store: any StateStore
    public let configuration: Configuration
    private var submissions: [String: Submission] = [:]
    /// `deployment@environment` -> the submission launching it now.
    private var launching: [String: String] = [:]
    /// `deployment@environment` -> the launcher that configured it (watched, stopped by stopAll).
    private var launched: [String: Launcher] = [:]
    /// `deployment@environment` -> its roll-out under way, which `terminate` and `stopAll`
    /// interrupt before they stop anything (so nothing is started behind their back).
    private var inflight: [String: Task<LaunchResult, any Error>] = [:]
    private let work: AsyncStream<Job>
    private nonisolated let workInput: AsyncStream<Job>.Continuation

    private enum Job: Sendable {
        case launch(id: String, launcher: Launcher, request: LaunchRequest, key: String)
    }

    private final class Submission: Sendable {
        let ticket: LaunchTicket
        let log: ProgressLog
        init(ticket: LaunchTicket, log: ProgressLog) {
            self.ticket = ticket
            self.log = log
        }
    }

    public init(store: any StateStore, configuration: Configuration) {
        self.store = store
        self.configuration = configuration
        (self.work, self.workInput) = AsyncStream.makeStream(of: Job.self)
    }

    // MARK: - Service

    public func run() async throws {
        let interval = self.configuration.watchInterval
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let interval {
                    group.addTask { await self.watch(every: interval) }
                }
                for await job in self.work {
                    switch job {
                    case .launch(let id, let launcher, let request, let key):
                        group.addTask { await self.execute(id: id, launcher: launcher, request: request, key: key) }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stopAccepting()
        }
    }

    /// No more launches; `run()` then cancels what still runs and returns.
    public nonisolated func stopAccepting() {
        self.workInput.finish()
    }

    // MARK: - Calls

    /// Validates (an invalid deployable throws `LaunchError(.invalid)` and starts nothing)
    /// and queues the launch; progress and result through `progress(_:since:)`.
    public func submit(_ submission: LaunchSubmission, actor: AuditActor = .currentOSUser()) throws -> LaunchTicket {
        let options = LaunchOptions(
            stateDirectory: self.configuration.stateDirectory, console: self.configuration.console,
            agentBrokerURL: self.configuration.agentBrokerURL,
            waitBudget: .milliseconds(Int64(max(0.1, submission.waitBudgetSeconds) * 1000)),
            jobTimeout: .milliseconds(Int64(max(1, submission.jobTimeoutSeconds) * 1000)), actor: actor,
            trustedUser: self.configuration.trustedUser, busReach: self.configuration.busReach, accounts: self.configuration.accounts)
        let log = ProgressLog(echo: self.configuration.log)
        let launcher = Launcher(
            store: self.store, providers: self.configuration.providers(submission.request), options: options,
            progress: { log.append($0.description) })
        let plan = try launcher.validatedPlan(submission.request)
        let environment = plan.environment ?? "default"
        let key = "\(plan.deployment)@\(environment)"
        if let running = self.launching[key] {
            throw LaunchError(.alreadyLaunching, "\(key) is being launched by this coordinator already (launch \(running))")
        }
        let ticket = LaunchTicket(launchID: UUID().uuidString.lowercased(), deployment: plan.deployment, environment: environment)
        guard case .enqueued = self.workInput.yield(.launch(id: ticket.launchID, launcher: launcher, request: submission.request, key: key)) else {
            throw LaunchError(.shuttingDown, "the coordinator is shutting down; nothing was started")
        }
        self.submissions[ticket.launchID] = Submission(ticket: ticket, log: log)
        self.launching[key] = ticket.launchID
        self.configuration.accepted(ticket)
        return ticket
    }

    public func progress(_ launchID: String, since: Int) throws -> LaunchProgress {
        guard let submission = self.submissions[launchID] else {
            throw LaunchError(.unknownLaunch, "no launch \(launchID) on this coordinator")
        }
        return submission.log.progress(since: since)
    }

    public func list() -> LaunchList {
        LaunchList(
            launches: self.submissions.values.map { submission in
                let progress = submission.log.progress(since: Int.max)
                return LaunchList.Entry(
                    launchID: submission.ticket.launchID, deployment: submission.ticket.deployment,
                    environment: submission.ticket.environment, finished: progress.finished, configured: progress.result?.configured ?? false)
            }.sorted { ($0.deployment, $0.environment) < ($1.deployment, $1.environment) },
            pid: getpid())
    }

    /// Takes over a configured deployment that an earlier coordinator on the same bus
    /// launched (a restarted `serve`): it is watched for re-configuration and stopped by
    /// `stopAll`, as if launched here. False when it is not configured.
    @discardableResult
    public func adopt(deployment: String, environment: String) async throws -> Bool {
        guard try await self.store.deployment(deployment, environment: environment)?.status == .configured,
            let generation = try await self.store.generations(deployment: deployment, environment: environment).last(where: { $0.status == .active }),
            let request = try? JSONDecoder().decode(LaunchRequest.self, from: Data(generation.document.utf8))
        else { return false }
        let options = LaunchOptions(
            stateDirectory: self.configuration.stateDirectory, console: self.configuration.console,
            agentBrokerURL: self.configuration.agentBrokerURL, actor: .system, trustedUser: self.configuration.trustedUser,
            busReach: self.configuration.busReach, accounts: self.configuration.accounts)
        let echo = self.configuration.log
        self.launched["\(deployment)@\(environment)"] = Launcher(
            store: self.store, providers: self.configuration.providers(request), options: options, progress: { echo($0.description) })
        return true
    }

    /// Stops the deployment's instances (the record stays) and stops watching it.
    public func terminate(deployment: String, environment: String, actor: AuditActor = .currentOSUser()) async throws -> [String] {
        let key = "\(deployment)@\(environment)"
        await self.interrupt(key)
        let known = self.launched.removeValue(forKey: key)
        var request = LaunchRequest(file: "/")
        if let generation = try await self.store.generations(deployment: deployment, environment: environment).last,
            let recorded = try? JSONDecoder().decode(LaunchRequest.self, from: Data(generation.document.utf8))
        {
            request = recorded
        }
        var options = known?.options
            ?? LaunchOptions(
                stateDirectory: self.configuration.stateDirectory, console: self.configuration.console,
                agentBrokerURL: self.configuration.agentBrokerURL, trustedUser: self.configuration.trustedUser,
                busReach: self.configuration.busReach, accounts: self.configuration.accounts)
        options.actor = actor
        let launcher = Launcher(store: self.store, providers: self.configuration.providers(request), options: options)
        return try await launcher.terminate(deployment: deployment, environment: environment)
    }

    /// Terminates every deployment this coordinator launched (serve's SIGTERM), launches
    /// under way included: they are interrupted first.
    public func stopAll() async -> [String] {
        var stopped: [String] = []
        let keys = Set(self.launched.keys).union(self.submissions.values.map { "\($0.ticket.deployment)@\($0.ticket.environment)" })
        for key in keys.sorted() {
            guard let at = key.lastIndex(of: "@") else { continue }
            let deployment = String(key[..<at])
            let environment = String(key[key.index(after: at)...])
            guard let record = try? await self.store.deployment(deployment, environment: environment), record.status != .terminated else { continue }
            if (try? await self.terminate(deployment: deployment, environment: environment, actor: .system)) != nil { stopped.append(key) }
        }
        return stopped
    }

    // MARK: - Over the bus

    /// Registers the `LaunchMethod`s on the coordinator's bus endpoint. Only the
    /// coordinator's own login may call them (the broker checks `user_id`): a launch runs
    /// scripts, and every instance holds the agents' login.
    public nonisolated func register(on service: CoordinatorService) {
        let allowed = self.configuration.console.username
        for method in [LaunchMethod.launch, LaunchMethod.progress, LaunchMethod.terminate, LaunchMethod.list] {
            service.register(method: method) { call in
                guard call.userID == allowed else {
                    return .failure(ExceptionBody(code: .forbidden, text: "\(method) is only for the coordinator's user '\(allowed)', not '\(call.userID ?? "-")'"))
                }
                do {
                    return .success(MethodResponse(arguments: try await self.handle(method: method, arguments: call.method.arguments, caller: call.userID)))
                } catch let error as LaunchError {
                    let code: ExceptionCode = switch error.code {
                    case .unknownLaunch, .notFound: .notFound
                    case .alreadyLaunching: .conflict
                    case .invalid, .unknownProvider: .invalidRequest
                    default: .internalError
                    }
                    return .failure(ExceptionBody(code: code, text: error.message))
                } catch let error as MeshError {
                    return .failure(ExceptionBody(code: .invalidRequest, text: error.message))
                } catch {
                    return .failure(ExceptionBody(code: .internalError, text: "\(error)"))
                }
            }
        }
    }

    /// One `LaunchMethod` call: arguments in, result out. `caller` is the broker-checked
    /// `user_id` of the request, recorded as the actor of what it causes.
    public func handle(method: String, arguments: [String: MeshValue], caller: String?) async throws -> [String: MeshValue] {
        let actor = caller.map(AuditActor.amqpUser) ?? .system
        let values = MeshValue.map(arguments)
        switch method {
        case LaunchMethod.launch:
            return try MethodResponse(encoding: try self.submit(try values.decode(as: LaunchSubmission.self), actor: actor)).arguments
        case LaunchMethod.progress:
            let request = try values.decode(as: LaunchProgressRequest.self)
            return try MethodResponse(encoding: try self.progress(request.launchID, since: request.since)).arguments
        case LaunchMethod.terminate:
            let request = try values.decode(as: TerminateRequest.self)
            let stopped = try await self.terminate(deployment: request.deployment, environment: request.environment, actor: actor)
            return try MethodResponse(encoding: TerminateResult(stopped: stopped)).arguments
        case LaunchMethod.list:
            return try MethodResponse(encoding: self.list()).arguments
        default:
            throw LaunchError(.refused, "no method \(method)")
        }
    }

    // MARK: - Work

    private func execute(id: String, launcher: Launcher, request: LaunchRequest, key: String) async {
        guard let submission = self.submissions[id] else { return }
        let task = Task { try await launcher.launch(request) }
        self.inflight[key] = task
        do {
            let result = try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
            submission.log.finish(result: result)
            if result.configured { self.launched[key] = launcher }
        } catch {
            if task.isCancelled {
                // Recorded before `inflight` forgets it: `terminate` either finds the task
                // (and records it itself) or finds it recorded.
                await self.recordInterrupted(key)
                submission.log.finish(error: "interrupted: the launch was stopped before it finished")
            } else {
                submission.log.finish(error: "\(error)")
            }
        }
        self.inflight[key] = nil
        self.launching[key] = nil
    }

    /// Stops the roll-out of `key` under way, if any, and waits for it to end. What it
    /// recorded stays; its pending generation is marked failed ("interrupted").
    private func interrupt(_ key: String) async {
        guard let task = self.inflight[key] else { return }
        task.cancel()
        _ = await task.result
        await self.recordInterrupted(key)
    }

    /// Marks the newest generation of `key` failed if the interrupted roll-out left it
    /// pending. Outside the (cancelled) caller's task: the store refuses cancelled work.
    private func recordInterrupted(_ key: String) async {
        guard let at = key.lastIndex(of: "@") else { return }
        let deployment = String(key[..<at])
        let environment = String(key[key.index(after: at)...])
        let store = self.store
        await Task {
            guard let generation = try? await store.generations(deployment: deployment, environment: environment).last,
                generation.status == .pending
            else { return }
            _ = try? await store.failGeneration(generation.id, reason: "interrupted: the launch was stopped before it finished", actor: .currentOSUser())
        }.value
    }

    private func watch(every interval: Duration) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            for (key, launcher) in self.launched.sorted(by: { $0.key < $1.key }) {
                guard self.launching[key] == nil, let at = key.lastIndex(of: "@") else { continue }
                do {
                    _ = try await launcher.reconfigure(deployment: String(key[..<at]), environment: String(key[key.index(after: at)...]))
                } catch {
                    self.configuration.log("re-configuration of \(key) failed: \(error)")
                }
            }
        }
    }
}

/// One launch's progress lines and its end, written by the launcher's progress callback
/// (any thread) and read by `progress` calls.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private let started = ContinuousClock.now
    private let echo: @Sendable (String) -> Void
    private var events: [LaunchProgress.Event] = []
    private var result: LaunchResult?
    private var error: String?

    init(echo: @escaping @Sendable (String) -> Void) { self.echo = echo }

    func append(_ text: String) {
        let elapsed = self.started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        self.lock.withLock { self.events.append(LaunchProgress.Event(seconds: seconds, text: text)) }
        self.echo(text)
    }

    func finish(result: LaunchResult) { self.lock.withLock { self.result = result } }

    func finish(error: String) {
        self.lock.withLock { self.error = error }
        self.echo("launch failed: \(error)")
    }

    func progress(since: Int) -> LaunchProgress {
        self.lock.withLock {
            let from = min(max(0, since), self.events.count)
            return LaunchProgress(events: Array(self.events[from...]), next: self.events.count, result: self.result, error: self.error)
        }
    }
}
