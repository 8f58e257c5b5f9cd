import ArgumentParser
import Conductor
import Foundation

/// The background coordinator of `conductor launch --detach`, as recorded in
/// `<state-dir>/coordinators/<deployment>@<environment>.json` (mode 0600: the broker URL
/// carries the coordinator's password, like the secrets in state.sqlite).
struct CoordinatorRecord: Codable {
    var pid: Int32
    /// The coordinator's bus, credentials included (`conductor facts --broker` reaches it).
    var broker: String
    var deployment: String
    var environment: String
    var log: String
    /// Set once the launch finished.
    var result: LaunchResult?

    static func path(stateDirectory: String, deployment: String, environment: String) -> String {
        "\(stateDirectory)/coordinators/\(deployment)@\(environment).json"
    }

    static func read(_ path: String) -> CoordinatorRecord? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(CoordinatorRecord.self, from: $0) }
    }

    func write(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: try JSONEncoder().encode(self), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw ValidationError("cannot write \(path)") }
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

    /// SIGTERM (the coordinator stops what is still running and its broker), SIGKILL
    /// after `seconds`. True when it is gone.
    static func stop(_ pid: Int32, seconds: Double = 30) async -> Bool {
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

/// `conductor serve`: the background coordinator `launch --detach` re-executes (hidden).
/// Its own session (setsid), so the terminal's Ctrl-C and hang-up do not reach it or its
/// agents; it records itself, launches, records the result, and serves until SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "The background coordinator of `launch --detach` (not for direct use).",
        shouldDisplay: false
    )

    @OptionGroup var arguments: LaunchArguments

    func run() async throws {
        _ = setsid()  // launch --detach already spawned it leading a session; this covers other ways
        signal(SIGHUP, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let started = ContinuousClock.now
        let target = try self.arguments.checkedDeployable(command: "serve")
        let path = CoordinatorRecord.path(stateDirectory: self.arguments.state.directory, deployment: target.deployment, environment: target.environment)
        var record = CoordinatorRecord(
            pid: getpid(), broker: "", deployment: target.deployment, environment: target.environment,
            log: (path as NSString).deletingPathExtension + ".log", result: nil)
        let (launcher, bus, result) = try await self.arguments.launch(command: "serve", json: false, started: started) { bus in
            record.broker = bus.consoleURL
            try record.write(path)
        }
        record.result = result
        try record.write(path)
        say("serving until SIGTERM (conductor terminate \(target.deployment))")
        await LaunchCommand.waitForSignal()
        // `conductor terminate` stops the instances first; a plain SIGTERM leaves it to us.
        if let deployment = try? await launcher.store.deployment(target.deployment, environment: target.environment), deployment.status != .terminated {
            _ = try? await launcher.terminate(deployment: target.deployment, environment: target.environment)
        }
        await bus.stop()
        if CoordinatorRecord.read(path)?.pid == getpid() { try? FileManager.default.removeItem(atPath: path) }
        say("stopped")
    }
}

extension LaunchCommand {
    /// `--detach`: re-executes this binary as `conductor serve` in its own session, waits
    /// until its launch finished (or it died), prints the result and returns.
    func runDetached(started: ContinuousClock.Instant) async throws {
        let target = try self.arguments.checkedDeployable(command: "launch")
        let state = self.arguments.state.directory
        let path = CoordinatorRecord.path(stateDirectory: state, deployment: target.deployment, environment: target.environment)
        if let existing = CoordinatorRecord.read(path), CoordinatorRecord.isServing(existing.pid) {
            FileHandle.standardError.write(
                Data("conductor launch: \(target.deployment)@\(target.environment) already has a background coordinator (pid \(existing.pid)); conductor terminate \(target.deployment) first\n".utf8))
            throw ExitCode(1)
        }
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let logPath = (path as NSString).deletingPathExtension + ".log"
        let pid = try Self.spawnInNewSession(LocalProvider.currentExecutable(), ["serve"] + self.arguments.forwarded, log: logPath)
        let child = ExitWatch(pid)
        if !self.json { say("background coordinator pid \(pid), log \(logPath)") }

        // Its own budgets end the launch; this bound only guards against a stuck child.
        let deadline = ContinuousClock.now + .seconds(self.arguments.waitBudget + self.arguments.jobTimeout + 30)
        var finished: LaunchResult?
        while ContinuousClock.now < deadline {
            if let record = CoordinatorRecord.read(path), record.pid == pid, let result = record.result {
                finished = result
                break
            }
            if child.exited { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard let result = finished else {
            let tail = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(10).joined(separator: "\n")
            if !child.exited {
                FileHandle.standardError.write(Data("conductor launch: still launching in the background (pid \(pid)); see conductor status\n".utf8))
                throw ExitCode(1)
            }
            FileHandle.standardError.write(Data("\(tail)\nconductor launch: the background coordinator exited (\(child.status))\n".utf8))
            throw ExitCode(child.status == 2 ? 2 : 1)
        }
        if self.json {
            say(try Self.json(result))
        } else {
            say(LaunchTable.render(result))
            say(String(format: "%@ in %.2fs", result.configured ? "configured" : "FAILED", Self.seconds(started.duration(to: .now))))
            say("detached: the background coordinator (pid \(pid)) keeps the broker and instances; conductor terminate \(result.deployment) stops them")
        }
        if !result.configured { throw ExitCode(1) }
    }
}

extension LaunchCommand {
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
