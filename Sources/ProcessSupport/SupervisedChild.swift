#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Synchronization

/// A command run with our stdin/stdout/stderr in its own process group, under a supervisor
/// process that kills the whole group the moment this process is gone, even by SIGKILL
/// (`conductor lock NAME -- cmd` must never leave the command running without the lock).
///
/// The supervisor is this same binary run as `supervisorArguments` (`lock supervise --`),
/// which calls `SupervisedChild.superviseCommand` with descriptor 3 the read end of a
/// pipe whose write end only this process holds.
public final class SupervisedChild: Sendable {
    /// The descriptor on which the supervisor sees its parent's pipe.
    public static let parentDescriptor: Int32 = 3

    /// The supervisor; it leads the command's process group.
    public let pid: pid_t
    private let state = Mutex<State>(State())
    /// Kept only to stay alive for as long as the child.
    private nonisolated(unsafe) let signalSources: [any DispatchSourceSignal]

    private struct State {
        var status: WaitStatus?
        var waiters: [CheckedContinuation<WaitStatus, Never>] = []
    }

    private init(pid: pid_t, signalSources: [any DispatchSourceSignal]) {
        self.pid = pid
        self.signalSources = signalSources
    }

    /// Starts `command` under `executable supervisorArguments... -- command` in a new process
    /// group, with `environment` added to ours. SIGINT, SIGTERM and SIGHUP sent to us are
    /// passed on to the group (it is not in ours).
    public static func spawn(
        executable: String = "/proc/self/exe", supervisorArguments: [String], command: [String], environment extra: [String: String]
    ) throws(ProcessError) -> SupervisedChild {
        let pipe = try makePipe()
        defer { close(pipe.read) }
        let request = SpawnRequest(
            executable: executable, arguments: supervisorArguments + command,
            environment: SpawnRequest.environment(merging: extra),
            extraDescriptors: [Self.parentDescriptor: pipe.read], grouping: .newGroup, defaultSignals: false)
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(request)
        } catch {
            close(pipe.write)
            throw error
        }
        // The write end stays open (never written) for as long as this process lives.
        let child = SupervisedChild(pid: pid, signalSources: Self.forwardSignals(to: pid))
        Thread.detachNewThread {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            let status = WaitStatus(raw: raw)
            let waiting = child.state.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            for continuation in waiting { continuation.resume(returning: status) }
        }
        return child
    }

    /// Ctrl-C or a TERM to us reaches the command's group too.
    private static func forwardSignals(to pid: pid_t) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM, SIGHUP].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { _ = ChildProcess.killGroup(pid, signal: signalNumber) }
            source.resume()
            return source
        }
    }

    @discardableResult
    public func waitForExit() async -> WaitStatus {
        await withCheckedContinuation { (continuation: CheckedContinuation<WaitStatus, Never>) in
            let done: WaitStatus? = self.state.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// The shell's code for how it ended; 1 while it runs.
    public var exitStatus: Int32 { self.state.withLock { $0.status?.shellExitCode ?? 1 } }

    /// SIGKILL to the whole group, at once.
    public func kill() {
        ChildProcess.killGroup(self.pid, signal: SIGKILL)
    }

    /// The supervisor's side (`lock supervise -- COMMAND`): runs `command` in this
    /// process's group and kills that group as soon as the parent's pipe on descriptor 3
    /// closes. Returns the command's shell exit code (127 when it cannot start).
    public static func superviseCommand(_ command: [String]) -> Int32 {
        guard let executable = command.first else { return 2 }
        _ = fcntl(Self.parentDescriptor, F_SETFD, FD_CLOEXEC)
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(SpawnRequest(executable: executable, arguments: Array(command.dropFirst()), defaultSignals: false))
        } catch {
            FileHandle.standardError.write(Data("cannot start \(executable): \(String(cString: strerror(error.errno)))\n".utf8))
            return 127
        }
        while true {
            var parent = pollfd(fd: Self.parentDescriptor, events: Int16(POLLIN), revents: 0)
            if poll(&parent, 1, 10) > 0 {
                // EOF (or anything) on the pipe: the parent is gone.
                Glibc.kill(0, SIGKILL)
            }
            if let status = ChildProcess.poll(pid) { return status.shellExitCode }
        }
    }
}
