#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// How a child is started: the one `posix_spawn` every part of Conductor uses (the agent's
/// job runner, `lock --`, `serve --detach`, the local provider).
public struct SpawnRequest: Sendable {
    /// Where one of the child's standard descriptors comes from.
    public enum Stream: Sendable, Hashable {
        /// Ours.
        case inherit
        /// `/dev/null`.
        case null
        /// A file, created with `mode` when missing, appended to.
        case appending(path: String, mode: mode_t = 0o600)
        /// A descriptor of ours (the caller keeps owning it).
        case descriptor(Int32)
        /// A file read from its start (stdin only).
        case reading(path: String)
    }

    /// Which process group the child joins.
    public enum Grouping: Sendable, Hashable {
        /// Ours: our terminal's Ctrl-C reaches it too.
        case inherit
        /// A new group it leads, so `ChildProcess.killGroup` reaches everything it starts.
        case newGroup
        /// A new session (and group) it leads: no controlling terminal, it outlives us.
        case newSession
    }

    /// A path, or a bare name looked up in `PATH`.
    public var executable: String
    /// `argv[1...]`.
    public var arguments: [String]
    /// The whole environment; nil: ours.
    public var environment: [String: String]?
    public var workingDirectory: String?
    public var stdin: Stream
    public var stdout: Stream
    public var stderr: Stream
    /// More descriptors to hand over: child descriptor number -> one of ours.
    public var extraDescriptors: [Int32: Int32]
    public var grouping: Grouping
    /// Default signal dispositions and an empty mask in the child: we may ignore SIGPIPE
    /// or SIGINT, the command must not inherit that.
    public var defaultSignals: Bool
    /// Close every descriptor beyond 0-2 (and `extraDescriptors`) that this process did not
    /// mark close-on-exec: a pipe we inherited (a caller reading our output to its end)
    /// must not stay open in a child that outlives us.
    public var closeOtherDescriptors: Bool

    public init(
        executable: String, arguments: [String] = [], environment: [String: String]? = nil, workingDirectory: String? = nil,
        stdin: Stream = .inherit, stdout: Stream = .inherit, stderr: Stream = .inherit, extraDescriptors: [Int32: Int32] = [:],
        grouping: Grouping = .inherit, defaultSignals: Bool = true, closeOtherDescriptors: Bool = false
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.extraDescriptors = extraDescriptors
        self.grouping = grouping
        self.defaultSignals = defaultSignals
        self.closeOtherDescriptors = closeOtherDescriptors
    }

    /// The current environment with `overrides` applied.
    public static func environment(merging overrides: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(overrides) { _, new in new }
    }
}

/// How a child ended, decoded from `waitpid`'s status once, here.
public enum WaitStatus: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The wait-status macros are not imported into Swift; decode the bits as glibc does.
    public init(raw status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    /// The code a shell reports: the exit status, or 128 + the signal.
    public var shellExitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// Starting, signalling and waiting for child processes.
public enum ChildProcess {
    /// Starts the child; its pid. Descriptors the request names are the caller's to close.
    public static func spawn(_ request: SpawnRequest) throws(ProcessError) -> pid_t {
        let argv = [request.executable] + request.arguments
        let description = argv.joined(separator: " ")
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream) in [(Int32(0), request.stdin), (1, request.stdout), (2, request.stderr)] {
            switch stream {
            case .inherit:
                break
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .appending(let path, let mode):
                let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode)
                guard fd >= 0 else { throw ProcessError(code: .spawnFailed, errno: errno, command: "\(description) (output to \(path))") }
                opened.append(fd)
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            case .descriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            case .reading(let path):
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw ProcessError(code: .spawnFailed, errno: errno, command: "\(description) (input from \(path))") }
                opened.append(fd)
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }
        for (target, source) in request.extraDescriptors.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, source, target)
        }
        if request.closeOtherDescriptors {
            let kept = Set([0, 1, 2] + Array(request.extraDescriptors.keys))
            let sources = Set(opened + Array(request.extraDescriptors.values) + request.streamDescriptors)
            for fd in Self.openDescriptors() where !kept.contains(fd) && !sources.contains(fd) {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
        if let directory = request.workingDirectory {
            guard let addChdir = LibC.addChdir else { throw ProcessError(code: .spawnFailed, errno: ENOSYS, command: description) }
            _ = addChdir(&actions, directory)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags: Int32 = 0
        switch request.grouping {
        case .inherit: break
        case .newGroup:
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        case .newSession:
            flags |= LibC.spawnSetSID
        }
        var allSignals = sigset_t()
        var noSignals = sigset_t()
        if request.defaultSignals {
            sigfillset(&allSignals)
            sigemptyset(&noSignals)
            posix_spawnattr_setsigdefault(&attributes, &allSignals)
            posix_spawnattr_setsigmask(&attributes, &noSignals)
            flags |= Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let environment = (request.environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let searchPath = !request.executable.contains("/")
        var pid: pid_t = 0
        let status = withCStringArray(argv) { argv in
            withCStringArray(environment) { envp in
                searchPath
                    ? posix_spawnp(&pid, request.executable, &actions, &attributes, argv, envp)
                    : posix_spawn(&pid, request.executable, &actions, &attributes, argv, envp)
            }
        }
        guard status == 0 else { throw ProcessError(code: .spawnFailed, errno: status, command: description) }
        return pid
    }

    /// Signals the process group `pid` leads (started with `.newGroup` or `.newSession`).
    @discardableResult
    public static func killGroup(_ pid: pid_t, signal: Int32) -> Bool {
        pid > 0 && kill(-pid, signal) == 0
    }

    /// Reaps `pid` if it has ended; nil while it runs. ECHILD (someone else reaped it, or
    /// not our child) reads as nil too: ask `isRunning` then.
    public static func poll(_ pid: pid_t) -> WaitStatus? {
        var raw: Int32 = 0
        while true {
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid { return WaitStatus(raw: raw) }
            if result == -1, errno == EINTR { continue }
            return nil
        }
    }

    /// Waits for our child `pid` to end, on a dedicated thread (a blocking `waitpid` must
    /// never hold one of the cooperative pool's threads). Nil when it is not our child.
    public static func wait(_ pid: pid_t) async -> WaitStatus? {
        await withCheckedContinuation { (continuation: CheckedContinuation<WaitStatus?, Never>) in
            let thread = Thread {
                var raw: Int32 = 0
                while true {
                    let result = waitpid(pid, &raw, 0)
                    if result == pid { return continuation.resume(returning: WaitStatus(raw: raw)) }
                    if result == -1, errno == EINTR { continue }
                    return continuation.resume(returning: nil)
                }
            }
            thread.name = "conductor-wait-\(pid)"
            thread.start()
        }
    }

    /// A live process: it exists and is not a zombie. `kill(pid, 0)` alone also succeeds
    /// for a dead child nobody has reaped yet.
    public static func isRunning(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return false
        }
        let state = stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
        return state != "Z" && state != "X"
        #else
        return true
        #endif
    }

    /// SIGTERM, then SIGKILL when it still runs after `grace`; true when it is gone.
    /// A child of ours is reaped on the way: the caller knows `pid` is the process it means
    /// (not a number since reused by another child, whose own waiter would lose it).
    @discardableResult
    public static func terminate(_ pid: pid_t, grace: Duration, group: Bool = false) async -> Bool {
        let send: (Int32) -> Void = { signal in _ = group ? kill(-pid, signal) : kill(pid, signal) }
        guard Self.isRunning(pid) else {
            _ = Self.poll(pid)
            return true
        }
        send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            _ = Self.poll(pid)
            if !Self.isRunning(pid) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        send(SIGKILL)
        for _ in 0..<40 {
            _ = Self.poll(pid)
            if !Self.isRunning(pid) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// The first argument after the program's name in `/proc/<pid>/cmdline` (the
    /// subcommand of a `conductor` process: "agent", "serve"); nil when unreadable.
    public static func firstArgument(of pid: pid_t) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        return data.split(separator: 0).dropFirst().first.map { String(decoding: $0, as: UTF8.self) }
    }

    static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap(Int32.init)
    }
}

extension SpawnRequest {
    fileprivate var streamDescriptors: [Int32] {
        [self.stdin, self.stdout, self.stderr].compactMap { if case .descriptor(let fd) = $0 { fd } else { nil } }
    }
}

func withCStringArray<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}

/// glibc functions and constants Swift does not import without `_GNU_SOURCE`.
enum LibC {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    private static let pipe2Function: Pipe2? = lookUp("pipe2")
    static let addChdir: AddChdir? = lookUp("posix_spawn_file_actions_addchdir_np")
    /// POSIX_SPAWN_SETSID (spawn.h, glibc 2.26).
    static let spawnSetSID: Int32 = 0x80

    /// `pipe2`, so the pipe is close-on-exec from birth: a child spawned concurrently by
    /// another thread must not inherit our write end and hold our EOF hostage.
    static func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32 {
        guard let pipe2Function else {
            errno = ENOSYS
            return -1
        }
        return pipe2Function(fds, flags)
    }

    private static func lookUp<F>(_ name: String) -> F? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: F.self)
    }
}

/// A pipe whose both ends are close-on-exec.
public func makePipe() throws(ProcessError) -> (read: Int32, write: Int32) {
    var ends: [Int32] = [-1, -1]
    guard LibC.pipe2(&ends, O_CLOEXEC) == 0 else { throw ProcessError(code: .pipeFailed, errno: errno, command: "pipe") }
    return (ends[0], ends[1])
}
