#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// What to run, where, and within which limits.
public struct ProcessRequest: Sendable {
    public enum Command: Sendable, Hashable {
        /// An executable and its arguments; a name without `/` is searched in `PATH`.
        case executable(String, arguments: [String] = [])
        /// A string handed to `/bin/sh -c`.
        case shell(String)
    }

    public var command: Command
    /// The child's whole environment. `nil` inherits ours.
    public var environment: [String: String]?
    public var workingDirectory: String?
    public var timeout: Duration
    /// Time between SIGTERM and SIGKILL once the timeout has passed.
    public var killGracePeriod: Duration
    /// Bytes kept of stdout and of stderr, each; the rest is read and dropped.
    public var outputLimit: Int
    /// Where the child reads from: nothing (`/dev/null`) unless told, e.g. a descriptor of
    /// a file the caller opened (and closes once `run` returns).
    public var stdin: SpawnRequest.Stream = .null

    public init(
        _ command: Command,
        environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        timeout: Duration = .seconds(60),
        killGracePeriod: Duration = .seconds(5),
        outputLimit: Int = 1 << 20
    ) {
        self.command = command
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeout = timeout
        self.killGracePeriod = killGracePeriod
        self.outputLimit = outputLimit
    }

    /// The current environment with `overrides` applied: the usual way to pass parameters.
    public static func inheritedEnvironment(merging overrides: [String: String]) -> [String: String] {
        SpawnRequest.environment(merging: overrides)
    }
}

/// The first bytes of one output stream.
public struct CapturedOutput: Sendable, Hashable {
    public var bytes: [UInt8]
    /// The stream produced more than the limit; `bytes` holds its beginning.
    public var truncated: Bool
    /// Every byte the stream produced, kept or not.
    public var totalByteCount: Int

    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

public struct ProcessResult: Sendable, Hashable {
    public enum Termination: Sendable, Hashable {
        case exited(Int32)
        case signaled(Int32)
        /// The child was reaped by someone else (a `waitpid(-1)` elsewhere in the process).
        case unknown
    }

    public var termination: Termination
    public var stdout: CapturedOutput
    public var stderr: CapturedOutput
    public var duration: Duration
    /// The timeout passed and the process group was sent SIGTERM (and SIGKILL if needed).
    public var timedOut: Bool

    /// The exit status, or nil when a signal ended the process.
    public var exitCode: Int32? {
        if case .exited(let code) = termination { return code }
        return nil
    }

    public var signal: Int32? {
        if case .signaled(let signal) = termination { return signal }
        return nil
    }

    public var succeeded: Bool { termination == .exited(0) && !timedOut }
}

public struct ProcessError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        case spawnFailed
        case pipeFailed
    }

    public var code: Code
    public var errno: Int32
    public var command: String

    public var description: String {
        let reason = String(cString: strerror(errno))
        switch code {
        case .spawnFailed: return "cannot start \(command): \(reason)"
        case .pipeFailed: return "cannot create pipes for \(command): \(reason)"
        }
    }
}

/// Runs child processes in their own process group, capturing bounded output.
///
/// Each run uses one dedicated thread that polls both pipes and the child, so a child
/// writing megabytes never blocks on a full pipe and is always reaped, timeout or not.
public enum ProcessRunner {
    public static func run(_ request: ProcessRequest) async throws(ProcessError) -> ProcessResult {
        var attempt = 0
        let child: SpawnedChild
        while true {
            do {
                child = try SpawnedChild.spawn(request)
                break
            } catch let error where error.errno == ETXTBSY && attempt < 8 {
                // A script written moments ago can still be open for writing in a child
                // that some other thread forked meanwhile; that child execs or exits soon.
                attempt += 1
                try? await Task.sleep(for: .milliseconds(25 * attempt))
            }
        }
        let cancelled = CancellationFlag()
        let result: ProcessResult = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ProcessResult, Never>) in
                let thread = Thread {
                    continuation.resume(returning: child.superviseUntilExit(request, cancelled: cancelled))
                }
                thread.name = "conductor-process-\(child.pid)"
                thread.start()
            }
        } onCancel: {
            cancelled.set()
        }
        return result
    }
}

/// Set from a cancellation handler, read by the supervising thread.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { self.value.store(true, ordering: .releasing) }
    var isSet: Bool { self.value.load(ordering: .acquiring) }
}

private struct SpawnedChild: Sendable {
    let pid: pid_t
    let stdoutFD: Int32
    let stderrFD: Int32
    let started: ContinuousClock.Instant

    static func spawn(_ request: ProcessRequest) throws(ProcessError) -> SpawnedChild {
        let (path, arguments): (String, [String]) = {
            switch request.command {
            case .executable(let path, let arguments): return (path, arguments)
            case .shell(let script): return ("/bin/sh", ["-c", script])
            }
        }()
        let stdoutPipe = try makePipe()
        let stderrPipe: (read: Int32, write: Int32)
        do {
            stderrPipe = try makePipe()
        } catch {
            close(stdoutPipe.read)
            close(stdoutPipe.write)
            throw error
        }
        // Own process group so a timeout can signal everything the command started.
        let spawn = SpawnRequest(
            executable: path, arguments: arguments, environment: request.environment, workingDirectory: request.workingDirectory,
            stdin: request.stdin, stdout: .descriptor(stdoutPipe.write), stderr: .descriptor(stderrPipe.write), grouping: .newGroup)
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(spawn)
        } catch {
            for fd in [stdoutPipe.read, stdoutPipe.write, stderrPipe.read, stderrPipe.write] { close(fd) }
            throw error
        }
        close(stdoutPipe.write)
        close(stderrPipe.write)
        return SpawnedChild(pid: pid, stdoutFD: stdoutPipe.read, stderrFD: stderrPipe.read, started: .now)
    }

    /// Blocks the calling thread: drains both pipes, enforces the timeout, reaps the child.
    func superviseUntilExit(_ request: ProcessRequest, cancelled: CancellationFlag) -> ProcessResult {
        var stdout = OutputBuffer(limit: request.outputLimit)
        var stderr = OutputBuffer(limit: request.outputLimit)
        var openFDs: [Int32: Bool] = [stdoutFD: true, stderrFD: true]
        var termination: ProcessResult.Termination?
        var timedOut = false
        let deadline = started.advanced(by: request.timeout)
        var killAt: ContinuousClock.Instant?
        var killed = false
        // After the child exits, descendants may still hold the pipes; allow them the
        // timeout (and grace) before giving up on their output.
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

        while true {
            let now = ContinuousClock.now
            if !timedOut, now >= deadline || cancelled.isSet {
                timedOut = true
                kill(-pid, SIGTERM)
                killAt = now.advanced(by: request.killGracePeriod)
            }
            if let killAt, !killed, now >= killAt {
                killed = true
                kill(-pid, SIGKILL)
            }
            if termination == nil {
                termination = reap(blocking: false)
            }
            let stillOpen = openFDs.filter(\.value).map(\.key)
            if termination != nil, stillOpen.isEmpty { break }
            if termination != nil, killed, let killAt, now >= killAt.advanced(by: .milliseconds(500)) {
                // Output held open by processes that left our group: stop waiting for it.
                break
            }

            var pollFDs = stillOpen.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Short waits so the child's exit and the deadlines are noticed promptly
            // without a SIGCHLD handler (which would be process-wide).
            let waitMilliseconds: Int32 = termination == nil ? 20 : 50
            let ready = pollFDs.isEmpty
                ? { usleep(UInt32(waitMilliseconds) * 1000); return 0 }()
                : poll(&pollFDs, nfds_t(pollFDs.count), waitMilliseconds)
            guard ready > 0 else { continue }
            for entry in pollFDs where entry.revents != 0 {
                let count = readBuffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    let chunk = readBuffer[0..<count]
                    if entry.fd == stdoutFD { stdout.append(chunk) } else { stderr.append(chunk) }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    openFDs[entry.fd] = false
                }
            }
        }
        close(stdoutFD)
        close(stderrFD)
        let finalTermination = termination ?? reap(blocking: true) ?? .unknown
        return ProcessResult(
            termination: finalTermination,
            stdout: stdout.captured,
            stderr: stderr.captured,
            duration: ContinuousClock.now - started,
            timedOut: timedOut
        )
    }

    private func reap(blocking: Bool) -> ProcessResult.Termination? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid { break }
            if result == -1, errno == EINTR { continue }
            // ECHILD: already reaped elsewhere; waiting longer would wait forever.
            if result == -1, errno == ECHILD { return .unknown }
            return nil
        }
        switch WaitStatus(raw: status) {
        case .exited(let code): return .exited(code)
        case .signaled(let signal): return .signaled(signal)
        }
    }
}

private struct OutputBuffer {
    let limit: Int
    var bytes: [UInt8] = []
    var total = 0

    init(limit: Int) { self.limit = max(0, limit) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        total += chunk.count
        let room = limit - bytes.count
        if room > 0 { bytes.append(contentsOf: chunk.prefix(room)) }
    }

    var captured: CapturedOutput { CapturedOutput(bytes: bytes, truncated: total > bytes.count, totalByteCount: total) }
}
