import Foundation
import ProcessSupport
import Testing

/// The one spawn helper every part uses (jobs, `lock --`, `serve --detach`, the local
/// provider): real children, real signals, no mocks. Serialized: the descriptor test opens
/// an inheritable pipe, which a child spawned meanwhile by another test would inherit.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ChildProcessTests {
    @Test func waitStatusDecodesExitsAndSignals() {
        #expect(WaitStatus(raw: 0) == .exited(0))
        #expect(WaitStatus(raw: 3 << 8) == .exited(3))
        #expect(WaitStatus(raw: SIGKILL) == .signaled(SIGKILL))
        #expect(WaitStatus.exited(3).shellExitCode == 3)
        #expect(WaitStatus.signaled(SIGTERM).shellExitCode == 143)
    }

    @Test func aChildRunsInItsDirectoryWithItsEnvironmentAndOutputFile() async throws {
        let directory = NSTemporaryDirectory() + "spawn-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pid = try ChildProcess.spawn(
            SpawnRequest(
                executable: "sh", arguments: ["-c", "pwd; echo \"$GREETING\"; exit 7"], environment: ["GREETING": "hello", "PATH": "/usr/bin:/bin"],
                workingDirectory: directory, stdin: .null, stdout: .appending(path: directory + "/out.log")))
        #expect(await ChildProcess.wait(pid) == .exited(7))
        let output = try String(contentsOfFile: directory + "/out.log", encoding: .utf8)
        #expect(output == "\(directory)\nhello\n")
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/out.log")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func aMissingExecutableIsAnErrorNamingIt() {
        #expect(throws: ProcessError.self) { try ChildProcess.spawn(SpawnRequest(executable: "/nonexistent/conductor-test")) }
    }

    @Test func killGroupReachesWhatTheChildStarted() async throws {
        // The child starts a grandchild and waits; a group kill ends both.
        let pid = try ChildProcess.spawn(SpawnRequest(executable: "/bin/sh", arguments: ["-c", "sleep 60 & wait"], stdin: .null, grouping: .newGroup))
        try await Task.sleep(for: .milliseconds(200))
        #expect(getpgid(pid) == pid, "it leads its own group")
        #expect(ChildProcess.killGroup(pid, signal: SIGKILL))
        #expect(await ChildProcess.wait(pid) == .signaled(SIGKILL))
        for _ in 0..<100 where kill(-pid, 0) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(kill(-pid, 0) != 0, "a process of its group survived")
    }

    @Test func aNewSessionLeadsItsSession() async throws {
        let pid = try ChildProcess.spawn(SpawnRequest(executable: "/bin/sleep", arguments: ["5"], stdin: .null, grouping: .newSession))
        defer {
            kill(pid, SIGKILL)
            _ = ChildProcess.poll(pid)
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(getsid(pid) == pid)
    }

    @Test func anUnreapedDeadChildIsNotRunning() async throws {
        let pid = try ChildProcess.spawn(SpawnRequest(executable: "/bin/sleep", arguments: ["60"], stdin: .null))
        #expect(ChildProcess.isRunning(pid))
        kill(pid, SIGKILL)
        for _ in 0..<200 where ChildProcess.isRunning(pid) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!ChildProcess.isRunning(pid))
        #expect(kill(pid, 0) == 0, "still a zombie: nobody reaped it")
        #expect(ChildProcess.poll(pid) == .signaled(SIGKILL))
    }

    @Test func terminateEscalatesToKill() async throws {
        // Ignores SIGTERM: only the SIGKILL after the grace ends it.
        let pid = try ChildProcess.spawn(
            SpawnRequest(executable: "/bin/sh", arguments: ["-c", "trap '' TERM; while :; do sleep 0.1; done"], stdin: .null, grouping: .newGroup))
        try await Task.sleep(for: .milliseconds(200))
        #expect(await ChildProcess.terminate(pid, grace: .milliseconds(300), group: true))
        #expect(!ChildProcess.isRunning(pid))
    }

    @Test func closeOtherDescriptorsKeepsAPipeOfOursOutOfTheChild() async throws {
        let pipe = try makePipe()
        defer { close(pipe.read) }
        // Not close-on-exec, as an inherited descriptor would be.
        _ = fcntl(pipe.write, F_SETFD, 0)
        let pid = try ChildProcess.spawn(
            SpawnRequest(executable: "/bin/sleep", arguments: ["60"], stdin: .null, closeOtherDescriptors: true))
        close(pipe.write)
        // The child holds no write end: the pipe is hung up now, while the child still runs
        // (had it inherited the write end, nothing would be ready before it exits).
        var ready = pollfd(fd: pipe.read, events: Int16(POLLIN), revents: 0)
        let hungUp = poll(&ready, 1, 10_000) == 1
        #expect(hungUp, "the child kept the write end")
        if hungUp {
            var byte: UInt8 = 0
            #expect(read(pipe.read, &byte, 1) == 0)
        }
        #expect(ChildProcess.isRunning(pid))
        kill(pid, SIGKILL)
        _ = await ChildProcess.wait(pid)
    }
}

@Suite(.timeLimit(.minutes(1))) struct SignalWatchTests {
    @Test func aSignalIsCaughtEvenWhenItWasIgnoredBefore() async {
        signal(SIGHUP, SIG_IGN)
        let watch = SignalWatch([SIGHUP])
        #expect(watch.caught == nil)
        kill(getpid(), SIGHUP)
        #expect(await watch.wait() == SIGHUP)
        #expect(watch.caught == SIGHUP)
        #expect(SignalWatch.exitCode(SIGINT) == 130)
    }

    @Test func aCancelledWaitReturnsNil() async {
        let watch = SignalWatch([SIGUSR2])
        let waiting = Task { await watch.wait() }
        waiting.cancel()
        #expect(await waiting.value == nil)
    }
}
