import AMQPClient
import Agent
import ArgumentParser
import Conductor
import Foundation
import Logging
import Mesh
import ServiceLifecycle

/// A running `conductor serve`, as recorded in `<state-dir>/coordinator.json` (mode 0600:
/// the bus URL carries the coordinator's password, like the secrets in state.sqlite), so
/// that `launch`, `terminate` and recipes on this machine find it.
struct CoordinatorRecord: Codable {
    var pid: Int32
    /// The coordinator's bus, credentials included.
    var broker: String
    var scope: String

    static func path(stateDirectory: String) -> String { stateDirectory + "/coordinator.json" }

    static func read(_ path: String) -> CoordinatorRecord? {
        readRecord(CoordinatorRecord.self, from: path)
    }

    func write(_ path: String) throws {
        try writePrivateRecord(self, to: path)
    }

    /// The record of a live `conductor serve` in this state directory, if any.
    static func live(stateDirectory: String) -> CoordinatorRecord? {
        guard let record = read(path(stateDirectory: stateDirectory)), isServing(record.pid) else { return nil }
        return record
    }

    /// A live `conductor serve` process (not a zombie, not a reused pid).
    static func isServing(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0,
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
            !stat[close...].hasPrefix(") Z"),
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return false }
        return cmdline.split(separator: 0).dropFirst().first.map { String(decoding: $0, as: UTF8.self) } == "serve"
    }

    /// SIGTERM (the coordinator stops what it launched and its broker), SIGKILL after
    /// `seconds`. True when it is gone.
    static func stop(_ pid: Int32, seconds: Double = 60) async -> Bool {
        guard isServing(pid) else { return true }
        kill(pid, SIGTERM)
        for _ in 0..<Int(seconds * 10) {
            if !isServing(pid) { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGKILL)
        for _ in 0..<20 where isServing(pid) { try? await Task.sleep(for: .milliseconds(50)) }
        return !isServing(pid)
    }
}

/// A coordinator in this process: the bus (embedded unless --broker), the state store,
/// the coordinator endpoint (locks, events) and the launches. `serve` runs one until
/// SIGTERM with the launch methods on its endpoint; a foreground `launch` with no
/// coordinator reachable runs one for its own launch (`serveLaunches: false`: other
/// `launch` commands do not find it, and an endpoint it cannot start, e.g. because a
/// coordinator of that scope already serves on a shared bus, only costs the recipes'
/// locks and events, with a warning).
struct CoordinatorHost {
    let bus: LaunchBus
    let store: SQLiteStateStore
    let endpoint: CoordinatorService
    let launches: LaunchCoordinator
    private let endpointGroup: ServiceGroup
    private let launchesGroup: ServiceGroup
    private let running: [Task<Void, any Error>]

    /// `busRecord`: where an embedded broker's port and users are kept, so a restart
    /// brings back the bus its instances reconnect to.
    static func start(
        state: StateOptions, bus options: LaunchBusOptions, busRecord: String?, scope: String, watchInterval: Duration?,
        serveLaunches: Bool = true, log: @escaping @Sendable (String) -> Void
    ) async throws -> CoordinatorHost {
        let store = try state.openStore()
        let bus = try await options.start(record: busRecord)
        let logger = Logger(label: "conductor.serve", factory: { _ in SwiftLogNoOpLogHandler() })
        let endpoint: CoordinatorService
        do {
            endpoint = try CoordinatorService(broker: bus.console, scope: scope, store: store, logger: logger)
        } catch {
            await bus.stop()
            throw error
        }
        let stateDirectory = state.directory
        var configuration = LaunchCoordinator.Configuration(
            stateDirectory: stateDirectory, console: bus.console, agentBrokerURL: bus.agentURL, trustedUser: bus.trustedUser,
            watchInterval: watchInterval, log: log)
        // `conductor fwd DEPLOYMENT` finds the bus of a deployment by its name: record it
        // for every deployment launched here before any instance learns its URL. On an
        // external bus, record which coordinator launched it, so a `serve` restarted with
        // the same --broker and scope takes it over (a foreground launch owns its own).
        let external = bus.broker == nil
        let ours = CoordinatedRecord(scope: scope, bus: bus.console.redactedURL)
        configuration.accepted = { ticket in
            if external {
                let path = CoordinatedRecord.path(stateDirectory: stateDirectory, deployment: ticket.deployment, environment: ticket.environment)
                if serveLaunches { try? writePrivateRecord(ours, to: path) } else { try? FileManager.default.removeItem(atPath: path) }
                return
            }
            guard let busRecord, let saved = FileManager.default.contents(atPath: busRecord) else { return }
            let path = EmbeddedBusRecord.path(stateDirectory: stateDirectory, deployment: ticket.deployment, environment: ticket.environment)
            if path != busRecord, FileManager.default.createFile(atPath: path + ".tmp", contents: saved, attributes: [.posixPermissions: 0o600]) {
                _ = rename(path + ".tmp", path)
            }
        }
        let launches = LaunchCoordinator(store: store, configuration: configuration)
        if serveLaunches { launches.register(on: endpoint) }
        let endpointGroup = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: endpoint)], logger: logger))
        let launchesGroup = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: launches)], logger: logger))
        let running = [Task { try await endpointGroup.run() }, Task { try await launchesGroup.run() }]
        let host = CoordinatorHost(
            bus: bus, store: store, endpoint: endpoint, launches: launches, endpointGroup: endpointGroup, launchesGroup: launchesGroup, running: running)
        do {
            try await endpoint.waitUntilReady()
        } catch {
            if serveLaunches {
                _ = await host.stop()
                throw error
            }
            FileHandle.standardError.write(Data("conductor: warning: no coordinator endpoint for locks and events: \(error)\n".utf8))
        }
        return host
    }

    /// Terminates what it launched, stops the endpoint, then the bus.
    func stop() async -> [String] {
        self.launches.stopAccepting()
        let stopped = await self.launches.stopAll()
        await self.launchesGroup.triggerGracefulShutdown()
        await self.endpointGroup.triggerGracefulShutdown()
        for task in self.running { _ = await task.result }
        await self.bus.stop()
        return stopped
    }
}

/// `--coordinator` and `--scope` for launch and terminate.
struct CoordinatorOptions: ParsableArguments {
    @Option(name: .long, help: "AMQP URL of a bus where a `conductor serve` runs: submit to it (an error if none answers). Default: the coordinator recorded in the state directory, else one on --broker, else none.")
    var coordinator: String?

    @Option(name: .long, help: "The coordinator's scope (conductor:coordinator:<scope>).")
    var scope: String = Coordinator.defaultScope

    func validate() throws {
        do {
            _ = try Coordinator.name(scope: self.scope)
        } catch {
            throw ValidationError("--scope: \(error.message)")
        }
    }
}

/// A `conductor serve` reached over its bus.
struct RemoteCoordinator {
    var client: LaunchCoordinatorClient
    var pid: Int32?

    func close() async { try? await self.client.console.close() }

    /// Connects and asks `launches`; nil when nothing that serves launches answers.
    static func probe(_ url: String, scope: String, timeout: Duration) async -> RemoteCoordinator? {
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

extension LaunchCommand {
    /// --coordinator (must answer), the live coordinator recorded in the state directory
    /// (must answer), else a coordinator on --broker if one answers quickly; nil: none.
    func reachableCoordinator() async throws -> RemoteCoordinator? {
        let scope = self.coordinator.scope
        if let url = self.coordinator.coordinator {
            guard let found = await RemoteCoordinator.probe(url, scope: scope, timeout: .seconds(3)) else {
                FileHandle.standardError.write(Data("conductor launch: no coordinator \(scope) answered on \(redacted(url))\n".utf8))
                throw ExitCode(1)
            }
            return found
        }
        if let record = CoordinatorRecord.live(stateDirectory: self.arguments.state.directory) {
            guard let found = await RemoteCoordinator.probe(record.broker, scope: record.scope, timeout: .seconds(5)) else {
                FileHandle.standardError.write(
                    Data("conductor launch: the coordinator recorded in \(self.arguments.state.directory) (pid \(record.pid)) does not answer\n".utf8))
                throw ExitCode(1)
            }
            return found
        }
        if let broker = self.arguments.bus.broker {
            return await RemoteCoordinator.probe(broker, scope: scope, timeout: .seconds(1))
        }
        return nil
    }

    /// `--detach` with no coordinator: starts `conductor serve` in its own session (log in
    /// `<state-dir>/coordinator.log`) and waits until it answers.
    func startBackgroundCoordinator() async throws -> RemoteCoordinator {
        let state = self.arguments.state.directory
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let logPath = state + "/coordinator.log"
        var arguments = ["serve", "--state-dir", state, "--scope", self.coordinator.scope]
        if let broker = self.arguments.bus.broker { arguments += ["--broker", broker] }
        if let agentBroker = self.arguments.bus.agentBroker { arguments += ["--agent-broker", agentBroker] }
        if let trustedUser = self.arguments.bus.trustedUser { arguments += ["--trusted-user", trustedUser] }
        let pid = try Self.spawnInNewSession(LocalProvider.currentExecutable(), arguments, log: logPath)
        let child = ExitWatch(pid)
        if !self.json { say("started a background coordinator (conductor serve, pid \(pid), log \(logPath))") }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !child.exited {
            if let record = CoordinatorRecord.live(stateDirectory: state), record.pid == pid,
                let found = await RemoteCoordinator.probe(record.broker, scope: record.scope, timeout: .seconds(3))
            {
                return found
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let tail = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(10).joined(separator: "\n")
        FileHandle.standardError.write(
            Data("\(tail)\nconductor launch: the background coordinator \(child.exited ? "exited (\(child.status))" : "did not answer within 30 s")\n".utf8))
        if !child.exited { kill(pid, SIGTERM) }
        throw ExitCode(1)
    }

    /// posix_spawn with POSIX_SPAWN_SETSID: the child leads a new session (Foundation's
    /// Process makes it a group leader, which then cannot call setsid itself), stdin from
    /// /dev/null, stdout and stderr appended to `log` (mode 0600), no other descriptor.
    static func spawnInNewSession(_ executable: String, _ arguments: [String], log: String) throws -> pid_t {
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(log)") }
        defer { close(fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(Self.spawnSetSID))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        // Nothing else: a pipe this process inherited (a caller reading our output to its
        // end) must not stay open in a coordinator that outlives us.
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap(Int32.init)
        for other in open where other > 2 && other != fd { posix_spawn_file_actions_addclose(&actions, other) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard code == 0 else { throw ValidationError("cannot run \(executable) serve: \(String(cString: strerror(code)))") }
        return pid
    }

    /// glibc's POSIX_SPAWN_SETSID (spawn.h, since 2.26), not imported into Swift.
    static let spawnSetSID: Int32 = 0x80
}

/// Whether a child has exited, reaping it (waitpid, WNOHANG).
final class ExitWatch {
    let pid: pid_t
    private(set) var status: Int32 = -1
    private var done = false

    init(_ pid: pid_t) { self.pid = pid }

    var exited: Bool {
        if self.done { return true }
        var raw: Int32 = 0
        guard waitpid(self.pid, &raw, WNOHANG) == self.pid else { return false }
        self.done = true
        self.status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return true
    }
}

/// `conductor serve`: the long-running coordinator.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the coordinator: launches submitted by `conductor launch`, locks and events, the state store.",
        discussion: """
            Starts an embedded broker on 127.0.0.1 (unless --broker), opens the state store \
            (--state-dir) and serves the coordinator conductor:coordinator:<scope> on the bus: \
            the launch methods that `conductor launch` and `terminate` use, and the lock and \
            signal/wait services recipes use. It records itself in <state-dir>/coordinator.json \
            (mode 0600: pid, bus URL with credentials) so local commands find it, re-configures \
            members whose referenced facts changed (every --watch-interval), and on SIGTERM or \
            Ctrl-C stops every instance it launched (records stay), then its broker. \
            Restarted after a crash, it takes over the configured deployments it had launched: \
            on its recorded embedded bus, or with the same --broker and --scope. \
            `conductor launch --detach` starts one in the background when none is running. \
            See docs/launch.md.

            Exit status: 0 after a clean stop, 1 when it cannot start (e.g. another coordinator \
            serves this state directory).
            """
    )

    @OptionGroup var state: StateOptions

    @OptionGroup var bus: LaunchBusOptions

    @Option(name: .long, help: "The coordinator's scope: it answers as conductor:coordinator:<scope>.")
    var scope: String = Coordinator.defaultScope

    @Option(name: .long, help: "Seconds between checks of configured deployments for changed source facts (0: never).")
    var watchInterval: Double = 5

    func validate() throws {
        guard self.watchInterval >= 0 else { throw ValidationError("--watch-interval must be 0 or more seconds") }
        do {
            _ = try Coordinator.name(scope: self.scope)
        } catch {
            throw ValidationError("--scope: \(error.message)")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        let directory = self.state.directory
        let recordPath = CoordinatorRecord.path(stateDirectory: directory)
        if let existing = CoordinatorRecord.live(stateDirectory: directory), existing.pid != getpid() {
            FileHandle.standardError.write(Data("conductor serve: a coordinator already serves \(directory) (pid \(existing.pid))\n".utf8))
            throw ExitCode(1)
        }
        let started = ContinuousClock.now
        let busRecord = EmbeddedBusRecord.path(stateDirectory: directory, deployment: "coordinator", environment: self.scope)
        let host: CoordinatorHost
        do {
            host = try await CoordinatorHost.start(
                state: self.state, bus: self.bus, busRecord: busRecord,
                scope: self.scope, watchInterval: self.watchInterval > 0 ? .milliseconds(Int64(self.watchInterval * 1000)) : nil
            ) { line in
                say(String(format: "[%8.2fs] ", LaunchCommand.seconds(started.duration(to: .now))) + line)
            }
        } catch {
            FileHandle.standardError.write(Data("conductor serve: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        await Self.adoptEarlierDeployments(host, stateDirectory: directory, busRecord: busRecord, scope: self.scope)
        let record = CoordinatorRecord(pid: getpid(), broker: host.bus.consoleURL, scope: self.scope)
        do {
            try record.write(recordPath)
        } catch {
            _ = await host.stop()
            FileHandle.standardError.write(Data("conductor serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
        say("coordinator \(host.endpoint.name) serving on \(redacted(host.bus.consoleURL)) (state \(directory), pid \(getpid())); SIGTERM or Ctrl-C stops it and what it launched")
        await LaunchCommand.waitForSignal()
        say("stopping")
        let stopped = await host.stop()
        if CoordinatorRecord.read(recordPath)?.pid == getpid() { try? FileManager.default.removeItem(atPath: recordPath) }
        say("stopped\(stopped.isEmpty ? "" : " (terminated " + stopped.joined(separator: ", ") + ")")")
    }
}

extension ServeCommand {
    /// A restarted `serve` takes over the configured deployments the earlier one launched
    /// (their agents reconnect by themselves): on its recorded embedded bus, those whose
    /// bus record is this coordinator's; with --broker, those whose `CoordinatedRecord`
    /// names this scope and bus.
    static func adoptEarlierDeployments(_ host: CoordinatorHost, stateDirectory: String, busRecord: String, scope: String) async {
        guard let reports = try? await host.store.status() else { return }
        let launchedHere: (String, String) -> Bool
        if host.bus.broker == nil {
            let ours = CoordinatedRecord(scope: scope, bus: host.bus.console.redactedURL)
            launchedHere = { name, environment in
                CoordinatedRecord.read(CoordinatedRecord.path(stateDirectory: stateDirectory, deployment: name, environment: environment)) == ours
            }
        } else {
            guard host.bus.restored, let ours = FileManager.default.contents(atPath: busRecord) else { return }
            launchedHere = { name, environment in
                FileManager.default.contents(atPath: EmbeddedBusRecord.path(stateDirectory: stateDirectory, deployment: name, environment: environment)) == ours
            }
        }
        for report in reports where report.deployment.status == .configured {
            let name = report.deployment.name
            let environment = report.deployment.environment
            guard launchedHere(name, environment) else { continue }
            if (try? await host.launches.adopt(deployment: name, environment: environment)) == true {
                say("took over \(name)@\(environment), launched by the previous coordinator on this bus")
            }
        }
    }
}

/// Which coordinator launched a deployment on an external bus (`serve --broker`), as
/// `<state-dir>/coordinated/<deployment>@<environment>.json`: its scope and the bus's URL
/// without password. A `serve` restarted with the same --broker and scope takes over the
/// configured deployments whose record names it; a foreground launch removes the record.
struct CoordinatedRecord: Codable, Equatable {
    var scope: String
    var bus: String

    static func path(stateDirectory: String, deployment: String, environment: String) -> String {
        "\(stateDirectory)/coordinated/\(deployment)@\(environment).json"
    }

    static func read(_ path: String) -> CoordinatedRecord? {
        readRecord(CoordinatedRecord.self, from: path)
    }
}

/// A bus URL without its password, for output.
func redacted(_ url: String) -> String {
    (try? AMQPConnectionConfiguration(url: url).redactedURL) ?? "amqp://…"
}
