import AMQPClient
import Agent
import ArgumentParser
import Conductor
import Foundation
import Mesh
import MeshClient

/// `conductor run TARGET -- COMMAND...`: one command on many nodes, every node accounted for.
struct RemoteRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command on the agents a target names; report every node's result.",
        discussion: """
            TARGET is one of: --agent NAME (an agent name conductor:agent:ID, or an instance id; \
            repeatable); --where PREDICATE (the agents whose facts match, same syntax as conductor facts); \
            --all (every agent); --role R --deployment D (the instances of that role the state \
            store says should exist).

            Discovery comes first: named and role targets end it once every node answered (the \
            others are reported not found). For --where and --all the coordinator (scope \
            --scope) is asked which agents are live (a heartbeat within three of their \
            intervals); each is asked directly whether it matches, and discovery ends as soon \
            as every live agent answered. A live agent that has not answered by \
            --discovery-timeout is reported silent (it stopped or hung since its last \
            heartbeat), and is not run. With no coordinator (or one that does not answer within \
            0.5 s, or whose registry is still filling) or with --broadcast, discovery is a \
            broadcast that waits --discovery-timeout, or until --expect agents were found; \
            the progress line and --json (discovery) say which. Then the command is sent to the nodes found, \
            --batch at a time (all at once by default), each batch waiting for its nodes' \
            replies before the next starts, --batch-wait in between. A node whose reply does \
            not come within --timeout plus 5 s is reported as never answered, by name: a \
            timeout is never a success.

            COMMAND after -- is run without a shell when it has several words; a single word \
            is run with /bin/sh -c, so `-- 'echo $HOSTNAME > /tmp/x'` works.

            Requests are signed with the coordinator's key from --state-dir \
            (<state-dir>/keys/requests.ed25519) when it exists; agents started with \
            --trusted-key refuse unsigned ones.

            --after EVENT waits for a (latched) event before anything runs; --then-signal \
            EVENT signals one when every node succeeded, and only then. Events are scoped to \
            --deployment, else $CONDUCTOR_DEPLOYMENT, or --global, as for conductor signal/wait.

            Exit status: 0 every node succeeded; 1 some node failed (non-zero exit, killed at \
            its timeout) or answered with an error (e.g. refused); 3 none failed but some \
            never answered, were not found, went silent or were not run (or fewer than --expect were found); 4 no node matched the target; 2 on an error \
            (bus unreachable, bad target, no state); 75 the --after event did not come in \
            time (nothing ran); 69 no coordinator for --after/--then-signal; 65 the coordinator \
            refused the --after wait (nothing ran); 130 interrupted \
            (Ctrl-C stops sending; the nodes still running and those not run are still \
            reported); 64 bad usage. \
            See docs/primitives.md.
            """
    )

    @Option(name: .customLong("agent"), help: ArgumentHelp("Run on this agent: its name or instance id (repeatable, or comma-separated).", valueName: "name"))
    var agentOptions: [String] = []

    /// `--agent a,b --agent c` -> a, b, c.
    var agents: [String] {
        self.agentOptions.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    @Option(name: .long, help: "Run on the agents whose facts match this predicate (os=linux, or QMF's list form as JSON).")
    var `where`: String?

    @Flag(name: .long, help: "Run on every agent that answers discovery.")
    var all = false

    @Option(name: .long, help: "Run on the instances of this role (member name without [N]); needs --deployment.")
    var role: String?

    @Option(name: .long, help: "The deployment whose --role is meant; also the scope of --after/--then-signal events (default: $CONDUCTOR_DEPLOYMENT).")
    var deployment: String?

    @Option(name: [.customLong("environment"), .customLong("env")], help: "The deployment's environment.")
    var environment: String = "default"

    @OptionGroup var state: StateOptions

    @OptionGroup var bus: BusOptions

    @Option(name: .long, help: "Nodes per batch: a count (10) or a share of the nodes found (25%). Default: all at once.")
    var batch: String?

    @Option(name: .long, help: "Pause between batches: 2s, 500ms, 1.5 (seconds).")
    var batchWait: String = "0"

    @Option(name: .long, help: "Per node: the agent kills the command after this long (SIGTERM, then SIGKILL).")
    var timeout: String = "60s"

    @Option(name: .long, help: "How long discovery may take.")
    var discoveryTimeout: String = "2s"

    @Option(name: .long, help: "With --where or --all: end discovery once this many agents were found.")
    var expect: Int?

    @Flag(name: .long, help: "With --where or --all: do not ask the coordinator who is live; broadcast discovery and wait --discovery-timeout (or --expect).")
    var broadcast = false

    @Option(name: .long, help: "Keep at most this many bytes of each node's stdout and of its stderr.")
    var maxOutput: Int = 64 * 1024

    @Flag(name: .long, help: "Print one JSON object: every node and the summary.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Before anything runs, wait until this event was signalled (latched, as conductor wait).", valueName: "event"))
    var after: String?

    @Option(name: .long, help: "How long --after may wait: 30s, 10m, 0 (just look).")
    var afterTimeout: String = "10m"

    @Option(name: .long, help: ArgumentHelp("Signal this event once every node succeeded (never when one did not).", valueName: "event"))
    var thenSignal: String?

    @Flag(name: .long, help: "--after and --then-signal events are global, not scoped to a deployment.")
    var global = false

    @Option(name: .long, help: "The coordinator's scope for --after/--then-signal: conductor:coordinator:<scope> (default: $CONDUCTOR_COORDINATOR_SCOPE, else default).")
    var scope: String?

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command, after --.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        let kinds = [!self.agentOptions.isEmpty, self.where != nil, self.all, self.role != nil].filter { $0 }.count
        guard kinds == 1 else {
            throw ValidationError(kinds == 0
                ? "say where to run: --agent NAME, --where PREDICATE, --all, or --role R --deployment D"
                : "give one target: --agent, --where, --all or --role, not several")
        }
        if self.role != nil && self.deployment == nil { throw ValidationError("--role needs --deployment") }
        let chained = self.after != nil || self.thenSignal != nil
        if self.role == nil && self.deployment != nil && !chained {
            throw ValidationError("--deployment goes with --role (or names the scope of --after/--then-signal)")
        }
        if self.global && !chained { throw ValidationError("--global goes with --after or --then-signal") }
        for (option, event) in [("--after", self.after), ("--then-signal", self.thenSignal)] {
            guard let event else { continue }
            do { try LockNames.validate(event, what: "\(option) event name") } catch { throw ValidationError(error.message) }
        }
        if chained { _ = try self.eventScope() }
        guard Self.parseDuration(self.afterTimeout, allowZero: true) != nil else { throw ValidationError("--after-timeout must be like 0, 30s or 10m, got '\(self.afterTimeout)'") }
        guard !self.command.isEmpty, !self.command[0].isEmpty else { throw ValidationError("give the command after --, e.g. conductor run --all -- uptime") }
        if let batch { do { _ = try RunBatchSize(parsing: batch) } catch { throw ValidationError("--batch: \(error.message)") } }
        guard Self.parseDuration(self.batchWait, allowZero: true) != nil else { throw ValidationError("--batch-wait must be like 2s, 500ms or 1.5, got '\(self.batchWait)'") }
        guard let timeout = Self.parseDuration(self.timeout), timeout <= .seconds(RunRequest.maximumTimeoutSeconds) else {
            throw ValidationError("--timeout must be like 30s, 500ms or 1.5, at most \(Int(RunRequest.maximumTimeoutSeconds))s, got '\(self.timeout)'")
        }
        guard Self.parseDuration(self.discoveryTimeout) != nil else { throw ValidationError("--discovery-timeout must be like 2s, 500ms or 1.5, got '\(self.discoveryTimeout)'") }
        if let expect, expect < 1 { throw ValidationError("--expect must be at least 1") }
        if self.expect != nil && self.where == nil && !self.all { throw ValidationError("--expect goes with --where or --all (--agent and --role targets know how many to expect)") }
        if self.broadcast && self.where == nil && !self.all { throw ValidationError("--broadcast goes with --where or --all") }
        guard self.maxOutput >= 0 else { throw ValidationError("--max-output must be 0 or more bytes") }
        if let text = self.where {
            do { _ = try Mesh.Predicate.parse(text) } catch { throw ValidationError("invalid --where: \(error)") }
        }
        if !self.agentOptions.isEmpty && self.agents.isEmpty { throw ValidationError("--agent needs an agent name or instance id") }
        for agent in self.agents { _ = try Self.agentName(agent) }
    }

    /// `conductor:agent:ID` as given, or an instance id made into one.
    static func agentName(_ text: String) throws -> AgentName {
        do {
            return text.contains(":") ? try AgentName(parsing: text) : try AgentName(instance: text)
        } catch {
            throw ValidationError("'\(text)' is not an agent name or instance id: \(error.message)")
        }
    }

    /// 2s, 500ms, 1.5 (seconds), 2m.
    static func parseDuration(_ text: String, allowZero: Bool = false) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let (number, scale): (Substring, Double) =
            trimmed.hasSuffix("ms") ? (trimmed.dropLast(2), 0.001)
            : trimmed.hasSuffix("s") ? (trimmed.dropLast(), 1)
            : trimmed.hasSuffix("m") ? (trimmed.dropLast(), 60) : (Substring(trimmed), 1)
        guard let value = Double(number), value.isFinite, allowZero ? value >= 0 : value > 0, value * scale <= 86_400 else { return nil }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    func run() async throws {
        let target = try await self.target()
        let timeout = Self.parseDuration(self.timeout)!
        let request = RunRequest(
            command: self.command.count == 1 ? .shell(self.command[0]) : .argv(self.command),
            timeoutSeconds: Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        var settings = RemoteRunner.Settings(
            batch: try self.batch.map { try RunBatchSize(parsing: $0) } ?? .all,
            batchWait: Self.parseDuration(self.batchWait, allowZero: true)!,
            discoveryTimeout: Self.parseDuration(self.discoveryTimeout)!,
            maximumOutputBytes: self.maxOutput)
        let (broker, source) = try self.bus.configuration(local: .coordinator)
        // Agents that require the coordinator's signature (--trusted-key) accept run
        // requests signed with the key of the state directory, when it holds one.
        let keyPath = RequestSigner.path(stateDirectory: self.state.directory)
        var signer: RequestSigner?
        if FileManager.default.fileExists(atPath: keyPath) {
            do {
                signer = try RequestSigner.loadOrCreate(at: keyPath)
            } catch {
                Self.fail("cannot read the signing key: \(error)")
            }
        }
        let console: MeshConsole
        do {
            console = try await MeshConsole.connect(broker, signer: signer)
        } catch {
            Self.fail("cannot connect to the bus at \(broker.redactedURL) (from \(source)): \(error)")
        }
        var coordinator: CoordinatorClient?
        if self.after != nil || self.thenSignal != nil {
            do {
                coordinator = try await CoordinatorClient.using(console.connection, scope: self.coordinatorScope)
            } catch {
                try? await console.close()
                Self.fail("cannot reach the coordinator: \(error)", code: PrimitiveExit.unavailable)
            }
        }
        if let event = self.after, let coordinator {
            await self.waitForEvent(event, coordinator: coordinator, console: console)
        }
        // --where/--all: whom to wait for, from the coordinator's registry when it has one.
        var discovery: AgentDiscovery?
        if case .matching = target {
            discovery = self.broadcast ? .broadcast(reason: "--broadcast") : await AgentDiscovery.ask(console, scope: self.coordinatorScope, timeout: FactsCommand.registryTimeout)
            if case .registry(let coordinator, let agents, let ignored) = discovery {
                settings.liveAgents = agents.map(\.name)
                if ignored > 0 {
                    Self.note("\(ignored) agent(s) send heartbeats under a login not their own; \(coordinator) does not list them, so they are not run on (--broadcast reaches them)")
                }
            }
        }
        let quiet = self.json
        let how = discovery.map(Self.describe) ?? ""
        let runner = RemoteRunner(console: console)
        let running = Task {
            try await runner.run(request, on: target, settings: settings) { progress in
                guard !quiet else { return }
                switch progress {
                case .discovered(let found, let elapsed):
                    Self.note("\(found) node(s) found in \(Self.seconds(elapsed))\(how)")
                case .batchStarted(let number, let count, let agents) where count > 1:
                    Self.note("batch \(number)/\(count): \(agents.count) node(s)")
                case .batchStarted:
                    break
                case .finished(let node):
                    // Each node as soon as its outcome is known: a long batched run shows progress.
                    FileHandle.standardOutput.write(Data(Self.text(node).utf8))
                }
            }
        }
        // Ctrl-C (or SIGTERM) stops sending and still reports every node; a second one quits.
        let interruption = RunInterruption(cancelling: running)
        let report: RemoteRunReport
        do {
            report = try await running.value
        } catch {
            try? await console.close()
            Self.fail("run failed: \(error)")
        }
        if interruption.happened {
            try? await console.close()
            if self.json { print(try LaunchCommand.json(Output(report))) } else { say("summary: \(report.summary)") }
            Self.fail("interrupted: nodes still running were not waited for, the rest were not sent the command", code: 130)
        }
        var signalled: Bool?
        var signalFailure: String?
        if let event = self.thenSignal, let coordinator {
            signalled = false
            if report.allSucceeded {
                let request = SignalRequest(
                    event: event, scope: try self.eventScope(), node: SignalCommand.nodeName(nil), data: .map(["nodes": .int(Int64(report.nodes.count))]))
                do {
                    _ = try await coordinator.signal(request)
                    signalled = true
                } catch {
                    signalFailure = error.message
                }
            }
        }
        await coordinator?.close()
        try? await console.close()
        if self.json {
            var output = Output(report)
            output.signalled = signalled
            output.discovery = discovery.map { Output.Discovery($0, ended: report.discoveryEnded) }
            print(try LaunchCommand.json(output))
        } else {
            say("summary: \(report.summary)")
        }
        if report.nodes.isEmpty { Self.note("no node matched the target") }
        if let event = self.thenSignal {
            if let signalFailure {
                Self.fail("every node succeeded, but '\(event)' could not be signalled: \(signalFailure)", code: PrimitiveExit.unavailable)
            }
            Self.note(signalled == true ? "signalled '\(event)' (\(try self.eventScope()))" : "'\(event)' not signalled: not every node succeeded")
        }
        throw ExitCode(report.exitStatus)
    }

    /// Where --after/--then-signal events live: `global`, else --deployment, else
    /// $CONDUCTOR_DEPLOYMENT (as for conductor signal/wait).
    func eventScope() throws -> String {
        if self.global { return EventScopeOptions.globalScope }
        let scope = self.deployment ?? ProcessInfo.processInfo.environment["CONDUCTOR_DEPLOYMENT"].flatMap { $0.isEmpty ? nil : $0 }
        guard let scope else {
            throw ValidationError("no deployment to scope --after/--then-signal events to: pass --deployment NAME, set CONDUCTOR_DEPLOYMENT, or use --global")
        }
        do { try LockNames.validate(scope, what: "deployment") } catch { throw ValidationError(error.message) }
        return scope
    }

    var coordinatorScope: String {
        self.scope ?? ProcessInfo.processInfo.environment["CONDUCTOR_COORDINATOR_SCOPE"].flatMap { $0.isEmpty ? nil : $0 } ?? Coordinator.defaultScope
    }

    /// --after: returns once the event happened; otherwise ends the process (75 not in
    /// time, naming who signalled; 69 no coordinator) before anything ran.
    func waitForEvent(_ event: String, coordinator: CoordinatorClient, console: MeshConsole) async {
        let timeout = Self.parseDuration(self.afterTimeout, allowZero: true)!
        // Validated before run(): the scope resolves.
        let request = WaitRequest(event: event, scope: (try? self.eventScope()) ?? EventScopeOptions.globalScope, timeoutMilliseconds: timeout.wholeMilliseconds)
        let state: EventState
        do {
            state = try await coordinator.wait(request)
        } catch {
            await coordinator.close()
            try? await console.close()
            Self.fail("--after '\(event)': \(error.message)", code: PrimitiveOutput.code(for: error))
        }
        guard state.satisfied else {
            await coordinator.close()
            try? await console.close()
            let who = state.signals.isEmpty ? "nobody signalled" : "signalled by \(state.signals.map(\.node).joined(separator: ", "))"
            Self.fail("'\(event)' (\(state.scope)) not signalled within \(self.afterTimeout) (\(who)); nothing was run", code: PrimitiveExit.timedOut)
        }
        if !self.json { Self.note("'\(event)' happened") }
    }

    /// Named agents, the matching predicate, or the instances of a role from the state store.
    func target() async throws -> RemoteRunTarget {
        if self.all { return .matching(nil, expect: self.expect) }
        if let text = self.where { return .matching(try Mesh.Predicate.parse(text), expect: self.expect) }
        if let role = self.role, let deployment = self.deployment {
            let location: StateLocation
            do {
                location = try self.state.location()
            } catch {
                Self.fail("--state: \(error)")
            }
            let path = location.description
            guard location.exists else { Self.fail("no coordinator state at \(path) (use --state-dir or --state)") }
            let report: DeploymentStatusReport?
            do {
                report = try await self.state.openStore().status(deployment: deployment, environment: self.environment)
            } catch {
                Self.fail("cannot read the state at \(path): \(error)")
            }
            guard let report else { Self.fail("no deployment \(deployment)@\(self.environment) in \(path)") }
            let instances = RoleTargets.instances(ofRole: role, in: report)
            guard !instances.isEmpty else {
                let roles = RoleTargets.roles(in: report)
                Self.fail("deployment \(deployment)@\(self.environment) has no instance of role '\(role)' (roles: \(roles.isEmpty ? "none" : roles.joined(separator: ", ")))")
            }
            return .nodes(try instances.map { .init(name: try RoleTargets.agentName(of: $0), label: $0.member) })
        }
        return .nodes(try self.agents.map { .init(name: try Self.agentName($0)) })
    }

    /// A node's status line, then its output.
    static func text(_ node: RemoteRunNode) -> String {
        var line = "=== " + (node.label.map { "\($0) " } ?? "") + node.agent + ": " + node.status.rawValue.replacingOccurrences(of: "_", with: " ")
        if let result = node.result {
            line += ", exit \(result.exitCode), \(Self.seconds(result.duration))"
        }
        if let error = node.error { line += " (\(error))" }
        var text = line + "\n"
        if let result = node.result {
            text += Self.block(result.stdout)
            if !result.stderr.isEmpty { text += "--- stderr\n" + Self.block(result.stderr) }
            if result.truncated { text += "--- output truncated\n" }
        }
        return text
    }

    private static func block(_ output: String) -> String {
        output.isEmpty || output.hasSuffix("\n") ? output : output + "\n"
    }

    /// Milliseconds shown; under one, microseconds, so a fast command does not read as 0.000s.
    static func seconds(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return String(format: seconds < 0.001 ? "%.6fs" : "%.3fs", seconds)
    }

    /// What --json prints.
    struct Output: Encodable {
        var nodes: [RemoteRunNode]
        var batches: Int
        var summary: [String: [String]]
        var exitStatus: Int32
        /// --expect N with fewer agents found: how many are missing (not nameable).
        var unnamedMissing: Int
        /// With --then-signal: whether the event was signalled.
        var signalled: Bool?
        /// With --where/--all: how the nodes were found.
        var discovery: Discovery?

        struct Discovery: Encodable {
            var source: String
            var coordinator: String?
            var live: Int?
            var ignored: Int?
            var reason: String?
            var ended: CollectionEnd?

            init(_ discovery: AgentDiscovery, ended: CollectionEnd?) {
                self.source = discovery.source
                self.ended = ended
                switch discovery {
                case .registry(let coordinator, let agents, let ignored):
                    self.coordinator = coordinator.description
                    self.live = agents.count
                    self.ignored = ignored
                case .broadcast(let reason):
                    self.reason = reason
                }
            }
        }

        init(_ report: RemoteRunReport) {
            self.nodes = report.nodes
            self.batches = report.batches
            self.summary = Dictionary(uniqueKeysWithValues: RemoteRunNode.Status.allCases.map { ($0.rawValue, report.agents($0)) })
            self.exitStatus = report.exitStatus
            self.unnamedMissing = report.unnamedMissing
        }

        enum CodingKeys: String, CodingKey {
            case nodes, batches, summary
            case exitStatus = "exit_status"
            case unnamedMissing = "unnamed_missing"
            case signalled, discovery
        }
    }

    /// How discovery found the nodes, for the progress line.
    static func describe(_ discovery: AgentDiscovery) -> String {
        switch discovery {
        case .registry(let coordinator, let agents, _): " (asked the \(agents.count) live agent(s) of \(coordinator))"
        case .broadcast(let reason): " (broadcast: \(reason))"
        }
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("conductor run: \(message)\n".utf8))
    }

    static func fail(_ message: String, code: Int32 = 2) -> Never {
        Self.note(message)
        Foundation.exit(code)
    }
}

/// SIGINT/SIGTERM during a run cancel it (the runner then reports who was still running);
/// a second signal ends the process at once.
final class RunInterruption: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false
    private var sources: [any DispatchSourceSignal] = []

    init(cancelling task: Task<RemoteRunReport, any Error>) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                let again = self.lock.withLock {
                    defer { self.fired = true }
                    return self.fired
                }
                if again { _exit(130) }
                task.cancel()
            }
            source.resume()
            self.sources.append(source)
        }
    }

    var happened: Bool { self.lock.withLock { self.fired } }
}
