import Broker
import Conductor
import Foundation
import Logging
import Mesh
import TestSupport
import Testing

/// The issue's end-to-end requirement, through the command line: `conductor launch
/// --broker URL` is killed with SIGKILL mid-launch, then `conductor fwd --broker URL`
/// finishes it. The agents the dead launcher started are adopted (same pids, one agent
/// per instance), every job runs once at its agent, and `conductor terminate` stops them.
/// On a broker the test owns and on RabbitMQ when CONDUCTOR_RABBITMQ_URL is set.
@Suite(.timeLimit(.minutes(2)))
struct LaunchKillTests {
    @Test(arguments: LaunchBusKind.all) func aKilledLaunchIsFinishedByFwd(bus: LaunchBusKind) async throws {
        let prefix = bus == .embedded ? "127.61.7" : "127.61.8"
        var broker: BrokerServer?
        let busArguments: [String]
        switch bus {
        case .embedded:
            let users = [BrokerUser(name: "conductor", password: "c-secret"), BrokerUser(name: "agent", password: "a-secret")]
            let started = try await TestBroker.start(users: users, administrator: "conductor")
            let port = started.port
            broker = started.server
            busArguments = [
                "--broker", "amqp://conductor:c-secret@127.0.0.1:\(port)/%2F", "--agent-broker", "amqp://agent:a-secret@127.0.0.1:\(port)/%2F",
                "--bus-admin", try #require(started.adminURL(user: "conductor", password: "c-secret")),
            ]
        case .rabbitMQ:
            // The coordinator and the trusted user are guest; each agent gets a login of its own.
            busArguments = ["--broker", try #require(LaunchBusKind.rabbitMQURL), "--bus-admin", try #require(RabbitMQEnvironment.managementURL)]
        }
        let state = try LaunchHarness.temporaryDirectory()
        defer {
            // Whatever a failing run left behind.
            let cleanup = try? CLIProcess.start(["terminate", "webapp", "--state-dir", state])
            cleanup?.waitUntilExit()
        }

        // 1. The launch, killed once its progress says the db's job was sent (that job takes
        //    seconds here, so it is the only one sent and it is still unanswered) and every
        //    member was started (starts run side by side: a job may go out before the last
        //    start returned).
        let launch = try CLIProcess.start(
            ["launch", try SlowWebapp.copy(into: state), "--state-dir", state, "--local-addresses", prefix,
             "--exit-when-configured", "--json", "--wait-budget", "20"] + busArguments,
            stderrFile: state + "/launch.err")
        let halted = await CLIProcess.waitFor(seconds: 40) { SlowWebapp.dbJobSentAndEveryMemberStarted(progressFile: state + "/launch.err") }
        #expect(halted, "the launch never reached its first job: \((try? String(contentsOfFile: state + "/launch.err", encoding: .utf8)) ?? "")")
        kill(launch.processIdentifier, SIGKILL)
        #expect(await CLIProcess.exits(launch, within: 10))
        #expect(launch.terminationReason == .uncaughtSignal)
        try #require(halted)

        let store = try SQLiteStateStore(path: state + "/state.sqlite")
        let before = try #require(try await store.status(deployment: "webapp", environment: "default"))
        #expect(before.instances.count == 4)
        #expect(before.instances.flatMap(\.jobs).map(\.state) == [.sent], "one job sent when killed")
        let handlesBefore = Dictionary(uniqueKeysWithValues: before.instances.map { ($0.instance.id, $0.instance.providerHandle) })
        // The dead launcher's agents outlive it.
        for item in before.instances {
            #expect(Self.agents(carrying: item.instance.id.uuidString.lowercased()).count == 1, "\(item.instance.member)")
        }

        // 2. fwd finishes it on the same bus.
        let fwd = try await CLIProcess.run(["fwd", "webapp", "--state-dir", state, "--json", "--wait-budget", "20"] + busArguments, timeout: 60)
        #expect(fwd.status == 0, "fwd: \(fwd.stderr)")
        let result = try JSONDecoder().decode(LaunchResult.self, from: Data(fwd.stdout.utf8))
        #expect(result.configured)
        #expect(result.members.map(\.address) == ["2", "3", "4", "5"].map { "\(prefix).\($0)" })
        #expect(Set(result.members.map(\.instanceID)) == Set(before.instances.map { $0.instance.id.uuidString.lowercased() }))

        // No instance started twice: the same handles (pids), one agent process each.
        let after = try #require(try await store.status(deployment: "webapp", environment: "default"))
        #expect(after.deployment.status == .configured)
        #expect(after.instances.count == 4)
        for item in after.instances {
            let id = item.instance.id.uuidString.lowercased()
            #expect(item.instance.state == .configured)
            #expect(item.instance.providerHandle == handlesBefore[item.instance.id] ?? nil, "\(item.instance.member) has a new handle")
            #expect(Self.agents(carrying: id).count == 1, "\(item.instance.member): \(Self.agents(carrying: id))")
            // No job run twice: one job recorded, succeeded, and one finished job at the agent.
            #expect(item.jobs.count == 1 && item.jobs.first?.state == .succeeded, "\(item.instance.member): \(item.jobs)")
            let name = item.instance.member.replacingOccurrences(of: "[", with: "-").replacingOccurrences(of: "]", with: "")
            let finished = try FileManager.default.contentsOfDirectory(atPath: "\(state)/deployments/webapp@default/\(name)/state/jobs")
            #expect(finished.count == 1, "\(item.instance.member) ran \(finished.count) jobs")
        }
        let starts = try await store.auditTrail(deployment: "webapp", environment: "default", limit: 1000)
            .filter { $0.action == "instance.transition" && $0.detail?[path: "to"] == .string("starting") }
        #expect(starts.count == 4, "instances asked to start: \(starts.count)")
        let db = try #require(after.instances.first { $0.instance.member == "db" }?.jobs.first)
        #expect(db.result?[path: "replayed"] == .bool(true), "the db's job was answered from the agent's record, not run again")

        // 3. terminate stops the adopted agents and what their scripts left running.
        let terminate = try await CLIProcess.run(["terminate", "webapp", "--state-dir", state], timeout: 60)
        #expect(terminate.status == 0, "\(terminate.stderr)")
        for item in after.instances {
            #expect(LaunchHarness.processes(carrying: item.instance.id.uuidString.lowercased()).isEmpty)
        }
        try? await broker?.shutdown()
    }

    /// Live `conductor agent` processes that carry this instance id.
    static func agents(carrying instanceID: String) -> [Int32] {
        LaunchHarness.processes(carrying: instanceID).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
                !stat[close...].hasPrefix(") Z")
            else { return false }
            return data.split(separator: 0).dropFirst().first.map { String(decoding: $0, as: UTF8.self) } == "agent"
        }
    }
}

/// examples/webapp copied into a test's directory, its db script made `seconds` slower: a
/// test that kills the launch when it reports `configuring db` kills it while the db's job
/// runs, before any other job is sent, however loaded the machine. Nothing else differs.
enum SlowWebapp {
    /// The launch's progress says the db's job was sent and all four members were started:
    /// starts run side by side, so a job may go out before the last start returned, and a
    /// kill then leaves a member recorded `starting` without a handle (which fwd starts).
    static func dbJobSentAndEveryMemberStarted(progressFile: String) -> Bool {
        let progress = (try? String(contentsOfFile: progressFile, encoding: .utf8)) ?? ""
        let started = progress.split(separator: "\n").filter { $0.hasPrefix("started ") || $0.contains("] started ") }
        return progress.contains("configuring db (job") && started.count == 4
    }

    static func copy(into directory: String, seconds: Int = 2) throws -> String {
        let target = directory + "/webapp"
        try FileManager.default.copyItem(atPath: LaunchTests.repository + "/examples/webapp", toPath: target)
        let script = target + "/scripts/db.sh"
        let text = try String(contentsOfFile: script, encoding: .utf8)
        guard text.contains("set -eu\n") else { throw CocoaError(.fileReadCorruptFile) }
        try text.replacingOccurrences(of: "set -eu\n", with: "set -eu\nsleep \(seconds)\n").write(toFile: script, atomically: true, encoding: .utf8)
        return target + "/deployable.yml"
    }
}

/// The `conductor` binary as a child process, every wait bounded. Output goes through
/// files, not pipes: an agent a command leaves running may inherit a pipe's write end
/// (children are spawned concurrently), and a reader waiting for its end would hang. Waits
/// poll with `Task.sleep`, so they never block the (two-thread) cooperative pool.
enum CLIProcess {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func start(_ arguments: [String], environment: [String: String] = [:], stdoutFile: String? = nil, stderrFile: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LaunchHarness.conductorBinary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try stdoutFile.map(handle) ?? FileHandle.nullDevice
        process.standardError = try stderrFile.map(handle) ?? FileHandle.nullDevice
        try process.run()
        return process
    }

    private static func handle(_ path: String) throws -> FileHandle {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileWriteUnknown) }
        return handle
    }

    /// Runs to the end (SIGTERM after `timeout` seconds, SIGKILL 5 s later).
    static func run(_ arguments: [String], timeout: Double) async throws -> Output {
        let base = NSTemporaryDirectory() + "conductor-cli-\(UUID().uuidString.prefix(8))"
        defer { for suffix in [".out", ".err"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
        let process = try start(arguments, stdoutFile: base + ".out", stderrFile: base + ".err")
        if !(await exits(process, within: timeout)) {
            process.terminate()
            if !(await exits(process, within: 5)) { kill(process.processIdentifier, SIGKILL) }
            _ = await exits(process, within: 5)
        }
        return Output(
            status: process.isRunning ? -1 : process.terminationStatus,
            stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }

    static func exits(_ process: Process, within seconds: Double) async -> Bool {
        await waitFor(seconds: seconds) { !process.isRunning }
    }

    /// Polls `condition` every 50 ms for at most `seconds`.
    static func waitFor(seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}
