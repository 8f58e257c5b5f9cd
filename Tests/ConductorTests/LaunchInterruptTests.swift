import Conductor
import Foundation
import Testing

/// "Ctrl-C stops everything" (README), through the binary: a foreground launch interrupted
/// while a member configures stops every instance it started, records the deployment
/// terminated and its generation failed, says so, and exits with the shell's code for the
/// signal (not killed by it). Also when started the way a non-interactive shell starts a
/// background job (SIGINT ignored). And a foreground launch stops serving when another
/// shell terminates its deployment. Serialized: four webapp launches at once, beside the
/// rest of the target, load a 2-core machine more than the timing of other suites allows.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct LaunchInterruptTests {
    enum Start: String, CaseIterable, CustomStringConvertible {
        case sigint, sigterm, sigintWhileIgnored
        var description: String { self.rawValue }
        var signal: Int32 { self == .sigterm ? SIGTERM : SIGINT }
    }

    @Test(arguments: Start.allCases) func anInterruptedLaunchStopsWhatItStarted(start: Start) async throws {
        let prefix = ["sigint": "127.61.91", "sigterm": "127.61.92", "sigintWhileIgnored": "127.61.93"][start.rawValue]!
        let state = try LaunchHarness.temporaryDirectory()
        defer {
            let cleanup = try? CLIProcess.start(["terminate", "webapp", "--state-dir", state])
            cleanup?.waitUntilExit()
        }
        // The db's job takes 60 s: the signal comes while it configures.
        let arguments = ["launch", try SlowWebapp.copy(into: state, seconds: 60), "--state-dir", state, "--local-addresses", prefix, "--wait-budget", "90"]
        let launch: Process
        if start == .sigintWhileIgnored {
            // As `cmd &` in a script: the shell leaves SIGINT ignored for the job, exec keeps it.
            let quoted = ([LaunchHarness.conductorBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
            launch = Process()
            launch.executableURL = URL(fileURLWithPath: "/bin/sh")
            launch.arguments = ["-c", "trap '' INT; exec \(quoted) > '\(state)/launch.out' 2>&1"]
            launch.standardInput = FileHandle.nullDevice
            try launch.run()
        } else {
            launch = try CLIProcess.start(arguments, stdoutFile: state + "/launch.out", stderrFile: state + "/launch.err")
        }
        defer { if launch.isRunning { kill(launch.processIdentifier, SIGKILL) } }
        let output = { (try? String(contentsOfFile: state + "/launch.out", encoding: .utf8)) ?? "" }
        let configuring = await CLIProcess.waitFor(seconds: 60) { output().contains("configuring db (job") }
        try #require(configuring, "the launch never reached the db's job: \(output())")

        kill(launch.processIdentifier, start.signal)
        #expect(await CLIProcess.exits(launch, within: 40), "still running after \(start): \(output())")
        #expect(launch.terminationReason == .exit, "killed by the signal instead of handling it")
        #expect(launch.terminationStatus == 128 + start.signal)
        #expect(output().contains("interrupted by \(start == .sigterm ? "SIGTERM" : "SIGINT")"), "\(output())")

        let store = try SQLiteStateStore(path: state + "/state.sqlite")
        let report = try #require(try await store.status(deployment: "webapp", environment: "default"))
        #expect(report.deployment.status == .terminated)
        #expect(!report.instances.isEmpty)
        for item in report.instances {
            #expect(item.instance.state == .terminated, "\(item.instance.member)")
            #expect(LaunchKillTests.agents(carrying: item.instance.id.uuidString.lowercased()).isEmpty, "\(item.instance.member)'s agent still runs")
        }
        let generation = try #require(try await store.generations(deployment: "webapp", environment: "default").last)
        #expect(generation.status == .failed)
        #expect(generation.failureReason?.contains("interrupted") == true, "\(generation.failureReason ?? "-")")
        try store.close()
    }

    @Test func aForegroundLaunchEndsWhenAnotherShellTerminatesIt() async throws {
        let state = try LaunchHarness.temporaryDirectory()
        defer {
            let cleanup = try? CLIProcess.start(["terminate", "webapp", "--state-dir", state])
            cleanup?.waitUntilExit()
        }
        let launch = try CLIProcess.start(
            ["launch", try SlowWebapp.copy(into: state, seconds: 0), "--state-dir", state, "--local-addresses", "127.61.94", "--wait-budget", "60"],
            stdoutFile: state + "/launch.out", stderrFile: state + "/launch.err")
        defer { if launch.isRunning { kill(launch.processIdentifier, SIGKILL) } }
        let output = { (try? String(contentsOfFile: state + "/launch.out", encoding: .utf8)) ?? "" }
        try #require(await CLIProcess.waitFor(seconds: 90) { output().contains("serving; Ctrl-C") }, "\(output())")

        let terminate = try await CLIProcess.run(["terminate", "webapp", "--state-dir", state], timeout: 60)
        #expect(terminate.status == 0, "\(terminate.stderr)")
        #expect(await CLIProcess.exits(launch, within: 30), "the launch kept serving a terminated deployment: \(output())")
        #expect(launch.terminationStatus == 0)
        #expect(output().contains("was terminated elsewhere"), "\(output())")
    }
}
