import AMQPClient
import Foundation
import Logging
import Mesh
import MeshClient
import ProcessSupport
import ServiceLifecycle
import Synchronization

/// A coordinator in this process: the bus (embedded unless a broker URL is given), the
/// state store, the coordinator endpoint (locks, events) and the launches, run as one
/// `Service`. `conductor serve` runs one until SIGTERM with the launch methods on its
/// endpoint; a foreground `launch` with no coordinator reachable runs one for its own
/// launch (`serveLaunches: false`: other `launch` commands do not find it, and an endpoint
/// it cannot start, e.g. because a coordinator of that scope already serves on a shared
/// bus, only costs the recipes' locks and events, with a warning).
///
/// Its two services run in one `ServiceGroup`, the endpoint first: a graceful shutdown
/// stops the launches (terminating what they launched unless told to keep it) before the
/// endpoint, then the bus.
public final class CoordinatorHost: ServiceLifecycle.Service, Sendable {
    public let bus: LaunchBus
    public let store: any CoordinatorStateStore
    public let endpoint: CoordinatorService
    public let launches: LaunchCoordinator
    /// With `Settings.phoneHome`: what the HTTP API (`ConfigServer`, started by the caller)
    /// answers from, and the `phone-home` providers' side of it.
    public let phoneHome: PhoneHomeDesk?
    public let stateDirectory: String
    public let scope: String
    private let group: ServiceGroup
    private let stopping = StopOnce()

    public struct Settings: Sendable {
        public var stateDirectory: String
        /// A broker URL (and what agents connect with, and whom they trust); nil: embedded.
        public var broker: String?
        public var agentBroker: String?
        public var trustedUser: String?
        /// Where an embedded broker's port and users are kept, so a restart brings back the
        /// bus its instances reconnect to.
        public var busRecord: String?
        public var scope: String
        public var watchInterval: Duration?
        public var serveLaunches: Bool
        /// The address an embedded bus binds (`--bus-listen`); nil: 127.0.0.1.
        public var busListen: String?
        /// The management API of the broker given (`--bus-admin`); nil: its default.
        public var busAdmin: String?
        /// Every agent gets the `agentBroker` login (`--shared-agent-login`).
        public var sharedAgentLogin = false
        /// Its certificate for other machines (`--bus-tls-*`), or `busInsecure` (`--insecure`)
        /// to accept clear text beyond loopback (`LaunchBus.start`).
        public var busTLS: LaunchBusTLS?
        public var busInsecure = false
        /// Offer `phone-home` providers (the caller serves the HTTP API: `--http`).
        public var phoneHome = false
        /// Where the records are (`--state`); nil: `state.sqlite` in `stateDirectory`.
        public var state: StateLocation?
        /// The key that seals secrets (`--state-key`); nil: `StateLocation.open`'s default.
        public var stateKey: String?

        public init(
            stateDirectory: String, broker: String? = nil, agentBroker: String? = nil, trustedUser: String? = nil, busRecord: String? = nil,
            scope: String = Coordinator.defaultScope, watchInterval: Duration? = .seconds(5), serveLaunches: Bool = true
        ) {
            self.stateDirectory = stateDirectory
            self.broker = broker
            self.agentBroker = agentBroker
            self.trustedUser = trustedUser
            self.busRecord = busRecord
            self.scope = scope
            self.watchInterval = watchInterval
            self.serveLaunches = serveLaunches
        }
    }

    /// Opens the store, starts the bus and the services, and waits until the endpoint
    /// answers. `log` receives the launches' progress lines.
    public static func start(_ settings: Settings, log: @escaping @Sendable (String) -> Void) async throws -> CoordinatorHost {
        let stateDirectory = settings.stateDirectory
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let location = settings.state ?? .sqlite(path: stateDirectory + "/state.sqlite")
        let store = try await location.open(stateDirectory: stateDirectory, keyFile: settings.stateKey)
        let bus = try await LaunchBus.start(
            broker: settings.broker, agentBroker: settings.agentBroker, trustedUser: settings.trustedUser, record: settings.busRecord,
            listen: settings.busListen, tls: settings.busTLS, insecure: settings.busInsecure, busAdmin: settings.busAdmin,
            sharedAgentLogin: settings.sharedAgentLogin)
        let logger = Logger(label: "conductor.serve", factory: { _ in SwiftLogNoOpLogHandler() })
        // Its warnings (a lock request refused for not being the holder, a forced release)
        // go out with the launches' progress lines.
        let endpointLogger = Logger(label: "conductor.coordinator", factory: { _ in LineLogHandler(write: log) })
        let endpoint: CoordinatorService
        do {
            endpoint = try CoordinatorService(
                broker: bus.console, scope: settings.scope, store: store, trustedUser: bus.trustedUser,
                answers: bus.accounts == nil ? .any : .ownLogins, logger: endpointLogger)
        } catch {
            await bus.stop()
            throw error
        }
        var configuration = LaunchCoordinator.Configuration(
            stateDirectory: stateDirectory, console: bus.console, agentBrokerURL: bus.agentURL, trustedUser: bus.trustedUser,
            watchInterval: settings.watchInterval, log: log)
        configuration.accepted = Self.recordBus(of: bus, settings: settings)
        configuration.busReach = bus.reach
        configuration.accounts = bus.accounts
        let phoneHome = settings.phoneHome ? PhoneHomeDesk(store: store) : nil
        if let phoneHome {
            let console = bus.console
            configuration.providers = { LaunchCoordinator.standardProviders($0, console: console, phoneHome: phoneHome) }
        }
        let launches = LaunchCoordinator(store: store, configuration: configuration)
        if settings.serveLaunches { launches.register(on: endpoint) }
        let host = CoordinatorHost(
            bus: bus, store: store, endpoint: endpoint, launches: launches, phoneHome: phoneHome, settings: settings, logger: logger)
        host.runInBackground()
        do {
            try await endpoint.waitUntilReady()
        } catch {
            if settings.serveLaunches {
                _ = await host.stop()
                throw error
            }
            FileHandle.standardError.write(Data("conductor: warning: no coordinator endpoint for locks and events: \(error)\n".utf8))
        }
        return host
    }

    /// Enrolment of agents started by hand (`conductor agent enroll`), on a bus whose
    /// logins this coordinator makes; nil otherwise.
    public var enrollment: AgentEnrollment? {
        guard let accounts = self.bus.accounts else { return nil }
        let keys = (try? RequestSigner.loadOrCreate(at: RequestSigner.path(stateDirectory: self.stateDirectory))).map { [$0.publicKey.description] } ?? []
        return AgentEnrollment(
            store: self.store, accounts: accounts, console: self.bus.console, agentBrokerURL: self.bus.agentURL, trustedUser: self.bus.trustedUser,
            trustedKeys: keys)
    }

    private init(
        bus: LaunchBus, store: any CoordinatorStateStore, endpoint: CoordinatorService, launches: LaunchCoordinator, phoneHome: PhoneHomeDesk?,
        settings: Settings, logger: Logger
    ) {
        self.bus = bus
        self.store = store
        self.endpoint = endpoint
        self.launches = launches
        self.phoneHome = phoneHome
        self.stateDirectory = settings.stateDirectory
        self.scope = settings.scope
        // The endpoint first: a group stops its services in reverse order.
        self.group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: endpoint), .init(service: launches)], logger: logger))
    }

    /// `conductor fwd DEPLOYMENT` finds the bus of a deployment by its name: record it for
    /// every deployment launched here before any instance learns its URL. On an external
    /// bus, record which coordinator launched it, so a `serve` restarted with the same
    /// --broker and scope takes it over (a foreground launch owns its own).
    private static func recordBus(of bus: LaunchBus, settings: Settings) -> @Sendable (LaunchTicket) -> Void {
        let stateDirectory = settings.stateDirectory
        let serveLaunches = settings.serveLaunches
        let busRecord = settings.busRecord
        let ours = CoordinatedRecord(scope: settings.scope, bus: bus.console.redactedURL)
        let external = bus.broker == nil
        return { ticket in
            if external {
                let path = CoordinatedRecord.path(stateDirectory: stateDirectory, deployment: ticket.deployment, environment: ticket.environment)
                if serveLaunches { try? StateRecords.write(ours, to: path) } else { try? FileManager.default.removeItem(atPath: path) }
                return
            }
            guard let busRecord else { return }
            let path = EmbeddedBusRecord.path(stateDirectory: stateDirectory, deployment: ticket.deployment, environment: ticket.environment)
            if path != busRecord { StateRecords.copy(busRecord, to: path) }
        }
    }

    /// The group runs from `start` on, so the endpoint can answer before `start` returns;
    /// `run()` (for a caller's own `ServiceGroup`) waits for it and stops it gracefully.
    private let background = Mutex<Task<Void, any Error>?>(nil)

    private func runInBackground() {
        let group = self.group
        self.background.withLock { $0 = Task { try await group.run() } }
    }

    /// As a `Service`: serves until a graceful shutdown, then stops (terminating what it
    /// launched) and returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.stopping.waitUntilStopped()
        } onGracefulShutdown: {
            Task { _ = await self.stop() }
        }
    }

    /// Terminates what it launched, stops the endpoint, then the bus. Returns the members
    /// stopped. A second call waits for the first.
    @discardableResult
    public func stop() async -> [String] {
        guard self.stopping.begin() else {
            await self.stopping.waitUntilStopped()
            return []
        }
        self.launches.stopAccepting()
        let stopped = await self.launches.stopAll()
        await self.group.triggerGracefulShutdown()
        if let task = self.background.withLock({ $0 }) { _ = await task.result }
        await self.bus.stop()
        self.stopping.finish()
        return stopped
    }

    /// A restarted `serve` takes over the configured deployments the earlier one launched
    /// (their agents reconnect by themselves): on its recorded embedded bus, those whose
    /// bus record is this coordinator's; with a broker URL, those whose `CoordinatedRecord`
    /// names this scope and bus. Returns "name@environment" of each taken over.
    public func adoptEarlierDeployments() async -> [String] {
        guard let reports = try? await self.store.status() else { return [] }
        let stateDirectory = self.stateDirectory
        let launchedHere: (String, String) -> Bool
        if self.bus.broker == nil {
            let ours = CoordinatedRecord(scope: self.scope, bus: self.bus.console.redactedURL)
            launchedHere = { name, environment in
                CoordinatedRecord.read(CoordinatedRecord.path(stateDirectory: stateDirectory, deployment: name, environment: environment)) == ours
            }
        } else {
            let busRecord = Self.serveBusRecord(stateDirectory: stateDirectory, scope: self.scope)
            guard self.bus.restored, let ours = FileManager.default.contents(atPath: busRecord) else { return [] }
            launchedHere = { name, environment in
                FileManager.default.contents(atPath: EmbeddedBusRecord.path(stateDirectory: stateDirectory, deployment: name, environment: environment)) == ours
            }
        }
        var adopted: [String] = []
        for report in reports where report.deployment.status == .configured {
            let name = report.deployment.name
            let environment = report.deployment.environment
            guard launchedHere(name, environment) else { continue }
            if (try? await self.launches.adopt(deployment: name, environment: environment)) == true { adopted.append("\(name)@\(environment)") }
        }
        return adopted
    }

    /// Where `conductor serve` keeps its own embedded bus.
    public static func serveBusRecord(stateDirectory: String, scope: String) -> String {
        EmbeddedBusRecord.path(stateDirectory: stateDirectory, deployment: "coordinator", environment: scope)
    }
}

/// `stop` runs once; later callers and `run` wait for it to finish.
private final class StopOnce: Sendable {
    private struct State {
        var begun = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func begin() -> Bool {
        self.state.withLock { state in
            if state.begun { return false }
            state.begun = true
            return true
        }
    }

    func finish() {
        let waiting = self.state.withLock { state in
            state.finished = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for continuation in waiting { continuation.resume() }
    }

    func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.state.withLock { state in
                if state.finished { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// A running `conductor serve`, as recorded in `<state-dir>/coordinator.json` (mode 0600:
/// the bus URL carries the coordinator's password, like the secrets in state.sqlite), so
/// that `launch`, `terminate` and recipes on this machine find it.
public struct CoordinatorRecord: Codable, Sendable {
    public var pid: Int32
    /// The coordinator's bus, credentials included.
    public var broker: String
    public var scope: String
    /// The same bus with the login for local commands (`LaunchBus.recipeURL`); nil on an
    /// external bus.
    public var recipe: String?

    public init(pid: Int32, broker: String, scope: String, recipe: String? = nil) {
        self.pid = pid
        self.broker = broker
        self.scope = scope
        self.recipe = recipe
    }

    public static func path(stateDirectory: String) -> String { stateDirectory + "/coordinator.json" }

    public static func read(_ path: String) -> CoordinatorRecord? {
        StateRecords.read(CoordinatorRecord.self, from: path)
    }

    public func write(_ path: String) throws(HostError) {
        try StateRecords.write(self, to: path)
    }

    /// The record of a live `conductor serve` in this state directory, if any.
    public static func live(stateDirectory: String) -> CoordinatorRecord? {
        guard let record = read(path(stateDirectory: stateDirectory)), isServing(record.pid) else { return nil }
        return record
    }

    /// A live `conductor serve` process (not a zombie, not a reused pid).
    public static func isServing(_ pid: Int32) -> Bool {
        ChildProcess.isRunning(pid) && ChildProcess.firstArgument(of: pid) == "serve"
    }

    /// SIGTERM (the coordinator stops what it launched and its broker), SIGKILL after
    /// `seconds`. True when it is gone.
    public static func stop(_ pid: Int32, seconds: Double = 60) async -> Bool {
        guard isServing(pid) else { return true }
        return await ChildProcess.terminate(pid, grace: .milliseconds(Int64(seconds * 1000)))
    }

    /// Starts `executable serve arguments...` in its own session (it outlives us, no
    /// controlling terminal), stdin from /dev/null, stdout and stderr appended to `log`
    /// (mode 0600), no other descriptor of ours. Returns its pid.
    public static func spawnServe(executable: String, arguments: [String], log: String) throws -> pid_t {
        do {
            return try ChildProcess.spawn(
                SpawnRequest(
                    executable: executable, arguments: ["serve"] + arguments, stdin: .null, stdout: .appending(path: log),
                    stderr: .appending(path: log), grouping: .newSession, closeOtherDescriptors: true))
        } catch {
            throw HostError("cannot run \(executable) serve: \(error)")
        }
    }
}

/// Which coordinator launched a deployment on an external bus (`serve --broker`), as
/// `<state-dir>/coordinated/<deployment>@<environment>.json`: its scope and the bus's URL
/// without password. A `serve` restarted with the same --broker and scope takes over the
/// configured deployments whose record names it; a foreground launch removes the record.
public struct CoordinatedRecord: Codable, Equatable, Sendable {
    public var scope: String
    public var bus: String

    public static func path(stateDirectory: String, deployment: String, environment: String) -> String {
        "\(stateDirectory)/coordinated/\(deployment)@\(environment).json"
    }

    public static func read(_ path: String) -> CoordinatedRecord? {
        StateRecords.read(CoordinatedRecord.self, from: path)
    }
}

/// A `conductor serve` reached over its bus.
public struct RemoteCoordinator: Sendable {
    public var client: LaunchCoordinatorClient
    public var pid: Int32?

    public func close() async { try? await self.client.console.close() }

    /// Connects and asks `launches`; nil when nothing that serves launches answers.
    public static func probe(_ url: String, scope: String, timeout: Duration) async -> RemoteCoordinator? {
        guard let configuration = try? AMQPConnectionConfiguration(url: url),
            let console = try? await MeshConsole.connect(configuration)
        else { return nil }
        if let client = try? LaunchCoordinatorClient(console: console, scope: scope), let list = try? await client.list(timeout: timeout) {
            return RemoteCoordinator(client: client, pid: list.pid)
        }
        try? await console.close()
        return nil
    }
}
