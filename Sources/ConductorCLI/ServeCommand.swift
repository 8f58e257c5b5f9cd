import AMQPClient
import ArgumentParser
import ConfigServer
import Conductor
import Foundation
import Mesh
import MeshClient
import ProcessSupport

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
        var arguments = ["serve"] + self.arguments.state.arguments + ["--scope", self.coordinator.scope] + self.arguments.bus.arguments + self.http.arguments
        if self.insecure.insecure { arguments.append("--insecure") }
        let pid = try CoordinatorRecord.spawnServe(executable: LocalProvider.currentExecutable(), arguments: Array(arguments.dropFirst()), log: logPath)
        var exit: WaitStatus?
        if !self.json { say("started a background coordinator (conductor serve, pid \(pid), log \(logPath))") }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, exit == nil {
            if let record = CoordinatorRecord.live(stateDirectory: state), record.pid == pid,
                let found = await RemoteCoordinator.probe(record.broker, scope: record.scope, timeout: .seconds(3))
            {
                return found
            }
            try? await Task.sleep(for: .milliseconds(100))
            exit = ChildProcess.poll(pid)
        }
        let tail = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(10).joined(separator: "\n")
        FileHandle.standardError.write(
            Data("\(tail)\nconductor launch: the background coordinator \(exit.map { "exited (\($0))" } ?? "did not answer within 30 s")\n".utf8))
        if exit == nil { kill(pid, SIGTERM) }
        throw ExitCode(1)
    }
}

/// `conductor serve`: the long-running coordinator.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the coordinator: launches submitted by `conductor launch`, locks and events, the state store.",
        discussion: """
            Starts an embedded broker on 127.0.0.1 (unless --broker; for members on other \
            machines --bus-listen 0.0.0.0 with --bus-tls-cert and --bus-tls-key, or --insecure), opens the state store \
            (--state-dir, or the PostgreSQL database --state names) and serves the coordinator conductor:coordinator:<scope> on the bus: \
            the launch methods that `conductor launch` and `terminate` use, and the lock and \
            signal/wait services recipes use. It records itself in <state-dir>/coordinator.json \
            (mode 0600: pid, bus URL with credentials) so local commands find it, re-configures \
            members whose referenced facts changed (every --watch-interval), and on SIGTERM or \
            Ctrl-C stops every instance it launched (records stay), then its broker. \
            Restarted after a crash, it takes over the configured deployments it had launched: \
            on its recorded embedded bus, or with the same --broker and --scope. \
            `conductor launch --detach` starts one in the background when none is running. \
            On a RabbitMQ cluster give --broker every node (comma-separated or repeated): the \
            coordinator and its agents move to the next node when theirs goes away, and jobs \
            lost with it are sent again (docs/agent.md, "Several brokers"). \
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

    @OptionGroup var http: HTTPOptions

    @OptionGroup var insecure: InsecureOption

    func validate() throws {
        guard self.watchInterval >= 0 else { throw ValidationError("--watch-interval must be 0 or more seconds") }
        do {
            _ = try Coordinator.name(scope: self.scope)
        } catch {
            throw ValidationError("--scope: \(error.message)")
        }
        try self.insecure.check(bus: self.bus, http: self.http)
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
        // Before anything starts: SIGTERM or Ctrl-C from here on stops what was started.
        let signals = SignalWatch()
        let started = ContinuousClock.now
        var settings = CoordinatorHost.Settings(
            stateDirectory: directory, broker: self.bus.broker, agentBroker: self.bus.agentBroker, trustedUser: self.bus.trustedUser,
            busRecord: CoordinatorHost.serveBusRecord(stateDirectory: directory, scope: self.scope), scope: self.scope,
            watchInterval: self.watchInterval > 0 ? .milliseconds(Int64(self.watchInterval * 1000)) : nil)
        settings.busListen = self.bus.busListen
        settings.busAdmin = self.bus.busAdmin
        settings.sharedAgentLogin = self.bus.sharedAgentLogin
        (settings.busTLS, settings.busInsecure) = (self.bus.tls, self.insecure.insecure)
        settings.phoneHome = self.http.enabled
        settings.state = try self.state.location()
        settings.stateKey = self.state.keyFile
        let host: CoordinatorHost
        do {
            host = try await CoordinatorHost.start(settings) { line in
                say(String(format: "[%8.2fs] ", LaunchCommand.seconds(started.duration(to: .now))) + line)
            }
        } catch {
            FileHandle.standardError.write(Data("conductor serve: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let server: ConfigServer?
        do {
            server = try await self.http.start(desk: host.phoneHome, enrollment: host.enrollment)
        } catch {
            _ = await host.stop()
            FileHandle.standardError.write(Data("conductor serve: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if let server { say(HTTPOptions.announcement(server)) }
        if host.bus.reach.beyondLoopback, host.bus.broker != nil {
            say("embedded broker on \(LaunchBusOptions.listening(host.bus)) (\(LaunchBusOptions.logins(host.bus.reach)))")
        }
        for adopted in await host.adoptEarlierDeployments() {
            say("took over \(adopted), launched by the previous coordinator on this bus")
        }
        let record = CoordinatorRecord(pid: getpid(), broker: host.bus.consoleURL, scope: self.scope, recipe: host.bus.recipeURL)
        do {
            try record.write(recordPath)
        } catch {
            _ = await host.stop()
            await server?.stop()
            FileHandle.standardError.write(Data("conductor serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
        say("coordinator \(host.endpoint.name) serving on \(redacted(host.bus.consoleURL)) (state \((try? self.state.location())?.description ?? directory), pid \(getpid())); SIGTERM or Ctrl-C stops it and what it launched")
        _ = await signals.wait()
        say("stopping")
        let stopped = await host.stop()
        await server?.stop()
        if CoordinatorRecord.read(recordPath)?.pid == getpid() { try? FileManager.default.removeItem(atPath: recordPath) }
        say("stopped\(stopped.isEmpty ? "" : " (terminated " + stopped.joined(separator: ", ") + ")")")
    }
}

/// A bus URL without its password, for output.
func redacted(_ url: String) -> String {
    (try? AMQPConnectionConfiguration(url: url).redactedURL) ?? "amqp://…"
}
