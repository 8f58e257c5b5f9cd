import AMQPClient
import ArgumentParser
import ConfigServer
import Conductor
import Dispatch
import Foundation
import ProcessSupport

/// Written at once (not buffered), so it interleaves with the progress lines in order.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// What a launch is given, shared by `launch` and the background `serve` it re-executes.
struct LaunchArguments: ParsableArguments {
    @OptionGroup var deployable: DeployableArguments

    @OptionGroup var state: StateOptions

    @OptionGroup var bus: LaunchBusOptions

    @Option(name: .long, help: "Seconds a member may wait for its agent or its references before it is reported blocked.")
    var waitBudget: Double = 30

    @Option(name: .long, help: "Seconds one configuration job may run.")
    var jobTimeout: Double = 300

    @Option(
        name: .long,
        help: "First three octets of the local instances' loopback addresses (members get .2, .3, …); refused where another deployment holds them. Default: 127.0.0, or the first /24 above it no live deployment uses.")
    var localAddresses: String?

    func validate() throws {
        if let localAddresses = self.localAddresses, LocalProvider.addressPrefix(localAddresses) == nil {
            throw ValidationError("--local-addresses takes three octets of 127.0.0.0/8, like 127.0.0, got '\(localAddresses)'")
        }
        guard self.waitBudget > 0, self.jobTimeout >= 1 else { throw ValidationError("--wait-budget and --job-timeout must be positive") }
    }

    var request: LaunchRequest {
        LaunchRequest(
            file: self.deployable.file, environment: self.deployable.env,
            settings: self.deployable.parsedSettings.map { LaunchRequest.Setting(name: $0.name, value: $0.value) },
            localAddresses: self.localAddresses)
    }

    /// The same checks the launcher makes, before a broker or a state file exists; exit 2
    /// with the errors when FILE is not valid. Returns the deployment and environment.
    func checkedDeployable(command: String) throws -> (deployment: String, environment: String) {
        let request = self.request
        let report = DeployableLoader.load(file: request.file, environment: request.environment, settings: request.settings.map { ($0.name, $0.value) })
        guard report.isValid, let plan = report.plan else {
            for problem in report.errors { FileHandle.standardError.write(Data("\(problem)\n".utf8)) }
            FileHandle.standardError.write(Data("conductor \(command): \(self.deployable.file) is not valid; nothing was started\n".utf8))
            throw ExitCode(2)
        }
        return (plan.deployment, plan.environment ?? "default")
    }

    var submission: LaunchSubmission {
        LaunchSubmission(request: self.request, waitBudgetSeconds: self.waitBudget, jobTimeoutSeconds: self.jobTimeout)
    }
}

/// `conductor launch FILE`: from a deployable to running, configured instances.
struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Launch a deployable: start its instances and configure them as their references resolve.",
        discussion: """
            Validates FILE (nothing starts unless it is valid), records the deployment, starts \
            each member (a local agent with its own loopback address, or an existing agent with \
            provider: agents), sends each member its configuration job once every parameter \
            resolves, and prints a table of the results.

            Where it runs: when a coordinator is reachable (--coordinator URL, else the \
            `conductor serve` recorded in the state directory, else one on --broker) the launch \
            is submitted to it and its progress shown. Otherwise it runs a coordinator in this \
            process (an embedded broker unless --broker; members on other machines need \
            --bus-listen, beyond loopback only with --bus-tls-cert and --bus-tls-key, or \
            --insecure). It then keeps serving until Ctrl-C \
            (or stops at once with --exit-when-configured) and stops the instances; with \
            --detach it returns and the coordinator keeps them (starting `conductor serve` in \
            the background if none runs) until `conductor terminate`. See docs/launch.md.

            Exit status: 0 when every member is configured, 1 when any failed or is blocked, 2 when FILE is invalid.
            """
    )

    @OptionGroup var arguments: LaunchArguments

    @OptionGroup var coordinator: CoordinatorOptions

    @OptionGroup var http: HTTPOptions

    @OptionGroup var insecure: InsecureOption

    @Option(name: .long, help: "Seconds between checks for changed source facts while a foreground launch serves (re-configuration).")
    var watchInterval: Double = 5

    @Flag(name: .long, help: "Stop the instances and exit once every member is configured or failed (for scripts and CI).")
    var exitWhenConfigured = false

    @Flag(name: .long, help: "Return once every member is configured or failed, leaving the instances to the coordinator (a background `conductor serve`, started if none runs); `conductor terminate` stops them.")
    var detach = false

    @Flag(name: .long, help: "Print the result as JSON (progress goes to stderr).")
    var json = false

    @Flag(name: .long, help: "Print what `validate --explain` prints (each final value and where it came from) and launch nothing.")
    var explain = false

    var scope: String { self.coordinator.scope }

    func validate() throws {
        guard self.watchInterval > 0 else { throw ValidationError("--watch-interval must be positive") }
        if self.detach, self.exitWhenConfigured { throw ValidationError("--detach and --exit-when-configured exclude each other") }
        if self.explain, self.detach || self.exitWhenConfigured { throw ValidationError("--explain launches nothing, so it takes neither --detach nor --exit-when-configured") }
        try self.insecure.check(bus: self.arguments.bus, http: self.http)
    }

    func run() async throws {
        if self.explain { return try self.explainWithoutLaunching() }
        let started = ContinuousClock.now
        let target = try self.arguments.checkedDeployable(command: "launch")
        // Before anything starts: Ctrl-C or SIGTERM from here on stops what was started.
        let signals = SignalWatch()
        if let coordinator = try await self.reachableCoordinator() {
            if self.http.enabled {
                FileHandle.standardError.write(Data("conductor launch: warning: --http is for a coordinator this launch starts; the running one serves its own (conductor serve --http)\n".utf8))
            }
            try await self.launch(through: coordinator, started: started, signals: signals)
            return
        }
        if self.detach {
            let coordinator = try await self.startBackgroundCoordinator()
            try await self.launch(through: coordinator, started: started, signals: signals)
            return
        }
        try await self.launchInForeground(target: target, started: started, signals: signals)
    }

    /// Said (on stderr with --json) when a signal interrupted the launch.
    func interrupted(_ signal: Int32, stopped: [String]) -> ExitCode {
        let line = "interrupted by \(SignalWatch.name(signal)): "
            + (stopped.isEmpty ? "nothing was left running" : "stopped the instances of " + stopped.joined(separator: ", "))
            + "; the deployment is recorded terminated (conductor status)"
        if self.json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { say(line) }
        return ExitCode(SignalWatch.exitCode(signal))
    }

    /// `--explain`: validate's report, from the same code; exit 2 when FILE is invalid, as a launch would.
    func explainWithoutLaunching() throws {
        let report = self.arguments.deployable.load()
        try ValidationPrinter(file: self.arguments.deployable.file, explain: true, json: self.json).print(report)
        guard report.isValid else {
            FileHandle.standardError.write(Data("conductor launch: \(self.arguments.deployable.file) is not valid; nothing was started\n".utf8))
            throw ExitCode(2)
        }
    }

    /// No coordinator reachable: one in this process (embedded broker unless --broker, the
    /// coordinator endpoint for recipes' locks and events), for this launch, until Ctrl-C.
    func launchInForeground(target: (deployment: String, environment: String), started: ContinuousClock.Instant, signals: SignalWatch) async throws {
        let json = self.json
        let host: CoordinatorHost
        do {
            let directory = self.arguments.state.directory
            var settings = CoordinatorHost.Settings(
                stateDirectory: directory, broker: self.arguments.bus.broker, agentBroker: self.arguments.bus.agentBroker,
                trustedUser: self.arguments.bus.trustedUser,
                busRecord: EmbeddedBusRecord.path(stateDirectory: directory, deployment: target.deployment, environment: target.environment),
                scope: self.scope, watchInterval: .milliseconds(Int64(self.watchInterval * 1000)), serveLaunches: false)
            settings.busListen = self.arguments.bus.busListen
            settings.busAdmin = self.arguments.bus.busAdmin
            settings.sharedAgentLogin = self.arguments.bus.sharedAgentLogin
            (settings.busTLS, settings.busInsecure) = (self.arguments.bus.tls, self.insecure.insecure)
            settings.phoneHome = self.http.enabled
            settings.state = try self.arguments.state.location()
            settings.stateKey = self.arguments.state.keyFile
            host = try await CoordinatorHost.start(settings, log: { _ in })
        } catch {
            FileHandle.standardError.write(Data("conductor launch: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let server: ConfigServer?
        do {
            server = try await self.http.start(desk: host.phoneHome, enrollment: host.enrollment)
        } catch {
            _ = await host.stop()
            FileHandle.standardError.write(Data("conductor launch: \(error)\n".utf8))
            throw ExitCode(1)
        }
        // The instances first (their tokens are revoked), then the API.
        func stop() async -> [String] {
            let stopped = await host.stop()
            await server?.stop()
            return stopped
        }
        if let server {
            let line = HTTPOptions.announcement(server)
            if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { say(line) }
        }
        if host.bus.broker != nil, !json {
            say("embedded broker on \(LaunchBusOptions.listening(host.bus)) (users conductor, recipe and one per agent, random passwords, \(LaunchBusOptions.logins(host.bus.reach)))")
        }
        let result: LaunchResult
        do {
            let ticket = try await host.launches.submit(self.arguments.submission)
            // In this process a poll is a lock and a copy: often, so nothing waits on it.
            result = try await Self.follow(json: json, every: .milliseconds(20), signals: signals) { since in
                try await host.launches.progress(ticket.launchID, since: since)
            }
        } catch let interruption as Interruption {
            throw self.interrupted(interruption.signal, stopped: await stop())
        } catch {
            _ = await stop()
            throw Self.exit(error)
        }
        self.show(result, started: started)
        if !self.exitWhenConfigured {
            if !json { say("serving; Ctrl-C stops the instances and the broker") }
            let directory = self.arguments.state.directory
            // Until a signal, or a `conductor terminate` from another shell stopped them.
            let ended = await Self.serve(signals: signals) {
                (try? await host.store.deployment(result.deployment, environment: result.environment))?.status == .terminated
            }
            if ended == nil {
                if !json { say("\(result.deployment)@\(result.environment) was terminated elsewhere (conductor terminate --state-dir \(directory)); stopping the broker") }
                _ = await stop()
                if !result.configured { throw ExitCode(1) }
                return
            }
        }
        let stopped = await stop()
        if !json { say(stopped.isEmpty ? "nothing left to stop" : "stopped the instances of " + stopped.joined(separator: ", ")) }
        if !result.configured { throw ExitCode(1) }
    }

    /// Submits to a running coordinator and follows the launch; then, unless --detach,
    /// serves until Ctrl-C (or --exit-when-configured) and terminates through it.
    func launch(through coordinator: RemoteCoordinator, started: ContinuousClock.Instant, signals: SignalWatch) async throws {
        defer { Task { await coordinator.close() } }
        let client = coordinator.client
        let result: LaunchResult
        var submitted: LaunchTicket?
        do {
            let ticket = try await client.submit(self.arguments.submission)
            submitted = ticket
            if !self.json { say("submitted to \(client.coordinator)\(coordinator.pid.map { " (pid \($0))" } ?? "") as launch \(ticket.launchID)") }
            result = try await Self.follow(json: self.json, signals: signals) { since in try await client.progress(ticket.launchID, since: since) }
        } catch let interruption as Interruption {
            // The coordinator interrupts the roll-out, then stops what it started.
            var stopped: [String] = []
            if let ticket = submitted {
                stopped = (try? await client.terminate(deployment: ticket.deployment, environment: ticket.environment))?.stopped ?? []
            }
            throw self.interrupted(interruption.signal, stopped: stopped)
        } catch {
            throw Self.exit(error)
        }
        self.show(result, started: started)
        if self.detach {
            if !self.json {
                say("detached: the coordinator\(coordinator.pid.map { " (pid \($0))" } ?? "") keeps the instances; conductor terminate \(result.deployment) stops them")
            }
        } else {
            if !self.exitWhenConfigured {
                if !self.json { say("serving; Ctrl-C stops the instances (the coordinator keeps serving)") }
                _ = await signals.wait()
            }
            do {
                let stopped = try await client.terminate(deployment: result.deployment, environment: result.environment)
                if !self.json { say("stopped \(stopped.stopped.count) instance(s)") }
            } catch {
                FileHandle.standardError.write(Data("conductor launch: terminate: \(error)\n".utf8))
            }
        }
        if !result.configured { throw ExitCode(1) }
    }

    func show(_ result: LaunchResult, started: ContinuousClock.Instant) {
        if self.json {
            say((try? Self.json(result)) ?? "{}")
        } else {
            say(LaunchTable.render(result))
            say(String(format: "%@ in %.2fs", result.configured ? "configured" : "FAILED", Self.seconds(started.duration(to: .now))))
        }
    }

    /// A signal came while a launch was followed.
    struct Interruption: Error {
        var signal: Int32
    }

    /// Prints the launch's progress as it comes (stderr with --json) until it has a result;
    /// throws `Interruption` when `signals` caught one first.
    static func follow(
        json: Bool, every interval: Duration = .milliseconds(100), signals: SignalWatch? = nil, _ fetch: (Int) async throws -> LaunchProgress
    ) async throws -> LaunchResult {
        var seen = 0
        while true {
            if let signal = signals?.caught { throw Interruption(signal: signal) }
            let progress = try await fetch(seen)
            for event in progress.events {
                let line = String(format: "[%6.2fs] ", event.seconds) + event.text + "\n"
                if json { FileHandle.standardError.write(Data(line.utf8)) } else { FileHandle.standardOutput.write(Data(line.utf8)) }
            }
            seen = progress.next
            if let result = progress.result { return result }
            if let error = progress.error { throw LaunchError(.refused, error) }
            try await Task.sleep(for: interval)
        }
    }

    /// What a failed launch exits with: 2 for an invalid deployable, else 1; the error printed.
    static func exit(_ error: any Error) -> ExitCode {
        if let error = error as? LaunchError {
            for problem in error.errors { FileHandle.standardError.write(Data("\(problem)\n".utf8)) }
            FileHandle.standardError.write(Data("conductor launch: \(error.message)\n".utf8))
            return ExitCode(error.code == .invalid ? 2 : 1)
        }
        FileHandle.standardError.write(Data("conductor launch: \(error)\n".utf8))
        return ExitCode(1)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Until a signal (returned) or `stopped` says the instances are gone (nil), checked
    /// every second.
    static func serve(signals: SignalWatch, stopped: @escaping @Sendable () async -> Bool) async -> Int32? {
        await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await signals.wait() ?? SIGINT }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if Task.isCancelled { return SIGINT }
                    if await stopped() { return nil }
                }
                return SIGINT
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// The final table: member, address, state, each service's parameters (secrets masked)
/// and result.
enum LaunchTable {
    static func render(_ result: LaunchResult) -> String {
        var lines = ["\(result.deployment)@\(result.environment) generation \(result.generation)"]
        let header = ["MEMBER", "ADDRESS", "STATE", "SERVICE", "EXIT", "PARAMETERS / OUTPUT"]
        var rows: [[String]] = [header]
        for member in result.members {
            if member.services.isEmpty {
                rows.append([member.member, member.address ?? "-", member.state, "-", "-", member.reason ?? ""])
            }
            for (index, service) in member.services.enumerated() {
                let parameters = service.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                rows.append([
                    index == 0 ? member.member : "", index == 0 ? (member.address ?? "-") : "", index == 0 ? member.state : "",
                    service.name, service.exitCode.map(String.init) ?? "-", parameters.isEmpty ? "-" : parameters,
                ])
                if let output = service.output, !output.isEmpty { rows.append(["", "", "", "", "", "> " + output]) }
            }
            if member.state != "configured" {
                if let reason = member.reason { rows.append(["", "", "", "", "", "reason: " + reason]) }
                if !member.waitingFor.isEmpty { rows.append(["", "", "", "", "", "waiting for: " + member.waitingFor.joined(separator: ", ")]) }
            }
        }
        let widths = (0..<header.count - 1).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for (column, cell) in row.enumerated() {
                line += column < widths.count ? cell.padding(toLength: widths[column] + 2, withPad: " ", startingAt: 0) : cell
            }
            while line.last == " " { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
