import Foundation
import ProcessSupport
import Testing

@testable import Agent

@Suite("Process runner")
struct ProcessRunnerTests {
    @Test func exitCodesAndOutputAreReported() async throws {
        let result = try await ProcessRunner.run(ProcessRequest(.shell("echo out; echo err >&2; exit 3")))
        #expect(result.exitCode == 3)
        #expect(result.signal == nil)
        #expect(result.stdout.text == "out\n")
        #expect(result.stderr.text == "err\n")
        #expect(!result.stdout.truncated)
        #expect(!result.timedOut)
        #expect(!result.succeeded)
    }

    @Test func executableWithArgumentsIsFoundInPath() async throws {
        let result = try await ProcessRunner.run(ProcessRequest(.executable("printf", arguments: ["%s-%s", "a", "b c"])))
        #expect(result.succeeded)
        #expect(result.stdout.text == "a-b c")
    }

    @Test func missingExecutableIsASpawnError() async throws {
        await #expect(throws: ProcessError.self) {
            try await ProcessRunner.run(ProcessRequest(.executable("/nonexistent/conductor-no-such-tool")))
        }
    }

    @Test func signalIsReported() async throws {
        let result = try await ProcessRunner.run(ProcessRequest(.shell("kill -USR1 $$")))
        #expect(result.signal == SIGUSR1)
        #expect(result.exitCode == nil)
    }

    @Test func environmentAndWorkingDirectoryArePassed() async throws {
        let tree = try FixtureTree()
        let result = try await ProcessRunner.run(
            ProcessRequest(
                .shell("printf '%s|%s|%s' \"$CONDUCTOR_PARAM\" \"$(pwd -P)\" \"${HOME-unset}\""),
                environment: ["CONDUCTOR_PARAM": "value with spaces", "PATH": "/usr/bin:/bin"],
                workingDirectory: tree.root
            ))
        let realRoot = URL(fileURLWithPath: tree.root).resolvingSymlinksInPath().path
        #expect(result.stdout.text == "value with spaces|\(realRoot)|unset")
    }

    @Test func inheritedEnvironmentKeepsPathAndAddsOverrides() async throws {
        let environment = ProcessRequest.inheritedEnvironment(merging: ["CONDUCTOR_X": "1"])
        let result = try await ProcessRunner.run(ProcessRequest(.shell("echo $CONDUCTOR_X"), environment: environment))
        #expect(result.stdout.text == "1\n")
    }

    @Test func outputIsCappedAndMarkedTruncated() async throws {
        let result = try await ProcessRunner.run(
            ProcessRequest(.shell("head -c 100000 /dev/zero; head -c 10 /dev/zero >&2"), outputLimit: 1000))
        #expect(result.succeeded)
        #expect(result.stdout.bytes.count == 1000)
        #expect(result.stdout.truncated)
        #expect(result.stdout.totalByteCount == 100_000)
        #expect(result.stderr.bytes.count == 10)
        #expect(!result.stderr.truncated)
    }

    /// Both streams far beyond a pipe's 64 KiB buffer, interleaved: a runner that reads
    /// one stream to the end before the other would hang here.
    @Test(.timeLimit(.minutes(1)))
    func largeOutputOnBothStreamsDoesNotDeadlock() async throws {
        let script = "i=0; while [ $i -lt 40 ]; do head -c 50000 /dev/zero >&2; head -c 50000 /dev/zero; i=$((i+1)); done"
        let result = try await ProcessRunner.run(ProcessRequest(.shell(script), timeout: .seconds(30), outputLimit: 4096))
        #expect(result.succeeded)
        #expect(result.stdout.totalByteCount == 2_000_000)
        #expect(result.stderr.totalByteCount == 2_000_000)
        #expect(result.stdout.bytes.count == 4096)
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        let tree = try FixtureTree()
        let pidFile = tree.path("grandchild.pid")
        // The shell starts a grandchild that ignores nothing and would outlive the shell.
        let script = "sleep 300 & echo $! > '\(pidFile)'; wait"
        let started = ContinuousClock.now
        let result = try await ProcessRunner.run(
            ProcessRequest(.shell(script), timeout: .milliseconds(300), killGracePeriod: .milliseconds(500)))
        let elapsed = ContinuousClock.now - started
        #expect(result.timedOut)
        #expect(result.signal == SIGTERM)
        #expect(elapsed < .seconds(5))
        let grandchild = try #require(pid_t(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // The grandchild got SIGTERM with the group; give init a moment to reap it.
        var alive = true
        for _ in 0..<50 where alive {
            alive = kill(grandchild, 0) == 0 && !isZombie(grandchild)
            if alive { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(!alive)
    }

    @Test func processIgnoringSigtermIsKilledAfterGrace() async throws {
        let started = ContinuousClock.now
        let result = try await ProcessRunner.run(
            ProcessRequest(.shell("trap '' TERM; while :; do sleep 0.05; done"), timeout: .milliseconds(200), killGracePeriod: .milliseconds(300)))
        #expect(result.timedOut)
        #expect(result.signal == SIGKILL)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func cancellationKillsTheProcess() async throws {
        let task = Task { try await ProcessRunner.run(ProcessRequest(.shell("sleep 300"), timeout: .seconds(600), killGracePeriod: .milliseconds(200))) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = try await task.value
        #expect(result.timedOut)
        #expect(result.signal == SIGTERM)
    }

    @Test func manyConcurrentRunsAreAllReaped() async throws {
        let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
            for index in 0..<20 {
                group.addTask { try await ProcessRunner.run(ProcessRequest(.shell("echo \(index)"))) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 20)
        #expect(results.allSatisfy { $0.succeeded })
        #expect(Set(results.map(\.stdout.text)).count == 20)
    }
}

/// A process that has exited but not been reaped still answers kill(pid, 0).
private func isZombie(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}
