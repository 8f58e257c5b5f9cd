import AMQPClient
import Agent
import Broker
import Foundation
import Logging
import Mesh
import MeshClient
import ServiceLifecycle
import TestSupport
import Testing

@testable import Conductor

/// `conductor run`'s engine (RemoteRunner) against real agents on a real bus: the embedded
/// broker, and RabbitMQ when CONDUCTOR_RABBITMQ_URL is set.
@Suite struct RemoteRunTests {
    /// 50 agents: 44 in this process that run the command, 2 that refuse it (another
    /// trusted user), and 4 `conductor agent` processes SIGKILLed while their batch runs.
    /// Every node must be accounted for by name, batches of 10 must never overlap more
    /// than 10 commands (timestamps written by the commands), and output must be cut.
    @Test(.timeLimit(.minutes(2)), arguments: LaunchBusKind.all)
    func fiftyAgentsSomeKilledMidRunAreAllAccountedFor(_ kind: LaunchBusKind) async throws {
        let live = (0..<44).map { String(format: "a-%02d", $0) }
        let refusing = ["b-0", "b-1"]
        let killed = (0..<4).map { "z-\($0)" }
        try await RemoteRunFleet.with(kind, inProcess: live, refusing: refusing, processes: killed) { fleet in
            let marks = fleet.directory + "/marks"
            try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
            // Two tickets: the first two commands to finish their sleep exit 7. Only batch 1
            // (a-00...a-09) can take them, so the failing nodes are live ones that answer.
            let script = """
                f=$(mktemp -p \(marks)); date +%s%N > "$f"; sleep 1; date +%s%N >> "$f"
                for i in 1 2; do mkdir "\(fleet.directory)/ticket$i" 2>/dev/null && { echo failing >&2; exit 7; }; done
                head -c 5000 /dev/zero | tr '\\0' x
                """
            let settings = RemoteRunner.Settings(batch: .count(10), discoveryTimeout: .seconds(10), replyGrace: .seconds(3), maximumOutputBytes: 1000)
            let pids = fleet.processes.map(\.processIdentifier)
            let started = ContinuousClock.now
            let report = try await RemoteRunner(console: fleet.console).run(
                RunRequest(command: .shell(script), timeoutSeconds: 10), on: .matching(fleet.predicate, expect: 50), settings: settings
            ) { progress in
                // The killed agents sort last: kill them once their batch is under way.
                if case .batchStarted(let number, let count, let agents) = progress, number == count {
                    #expect(agents.contains { $0.hasSuffix("z-0") })
                    DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) {
                        for pid in pids { kill(pid, SIGKILL) }
                    }
                }
            }
            let elapsed = started.duration(to: .now)

            let names = { (suffixes: [String]) in Set(suffixes.map { fleet.agentName($0) }) }
            #expect(report.nodes.count == 50)
            #expect(report.batches == 5)
            #expect(Set(report.agents(.noAnswer)) == names(killed))
            #expect(Set(report.agents(.error)) == names(refusing))
            #expect(report.nodes.filter { $0.status == .error }.allSatisfy { $0.error?.contains("not the trusted sender") == true })
            let failed = report.nodes.filter { $0.status == .failed }
            #expect(failed.count == 2, "\(failed.map { "\($0.agent): exit \($0.result?.exitCode ?? -1), timed out \($0.result?.timedOut ?? false), stderr \($0.result?.stderr ?? "-")" })")
            #expect(failed.allSatisfy { $0.result?.exitCode == 7 && $0.result?.stderr == "failing\n" && $0.batch == 1 })
            #expect(report.agents(.succeeded).count == 42)
            #expect(report.agents(.notFound).isEmpty)
            #expect(report.exitStatus == 1)
            for node in report.nodes where node.status == .succeeded {
                #expect(node.result?.stdout == String(repeating: "x", count: 1000))
                #expect(node.result?.truncated == true)
            }
            for number in 1...5 {
                #expect(report.nodes.filter { $0.batch == number }.count == 10)
            }
            for suffix in killed { #expect(report.summary.contains(fleet.agentName(suffix))) }

            // At most 10 commands at once, and more than one (they did run concurrently).
            let intervals = try FileManager.default.contentsOfDirectory(atPath: marks).compactMap { file -> (Int, Int)? in
                let lines = (try? String(contentsOfFile: marks + "/" + file, encoding: .utf8))?.split(separator: "\n").compactMap { Int($0) } ?? []
                return lines.count == 2 ? (lines[0], lines[1]) : nil
            }
            // Every live node's command ran (44); a killed agent's may not have started before
            // its SIGKILL 0.1 s into the batch (a busy machine showed 44 and 45 here).
            #expect(intervals.count >= 44)
            let overlap = Self.maximumOverlap(intervals)
            #expect(overlap <= 10 && overlap >= 2, "at most \(overlap) commands ran at once")
            // Five batches of 1 s commands, the last one waiting out the killed nodes' 10 + 3 s
            // (generous: a CI machine running the whole target at once took 5 s to answer the
            // first batch); every batch waiting out its deadline would take 65 s.
            #expect(elapsed < .seconds(60))
        }
    }

    /// Named and role targets: expected nodes that are not on the bus are reported
    /// `not_found` with their member name, the others run; the db instance is not touched.
    @Test(.timeLimit(.minutes(1)), arguments: LaunchBusKind.all)
    func roleTargetNamesTheInstanceThatIsMissing(_ kind: LaunchBusKind) async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStateStore(path: directory + "/state.sqlite")
        let actor = AuditActor(kind: .os, name: "tester")
        let generation = try await store.recordGeneration(deployment: "shop", environment: "test", document: "instances: {}", documentHash: "h", actor: actor)
        var records: [InstanceRecord] = []
        for member in ["web[0]", "web[1]", "web[2]", "web[10]", "db"] {
            records.append(try await store.recordInstanceIntent(generationID: generation.id, member: member, provider: "local", actor: actor))
        }
        // web[10] is placed on an agent that already ran (the `agents` provider): its handle names it.
        try await store.transitionInstance(
            records[3].id, to: .starting, providerHandle: Launcher.encode(InstanceHandle(instanceID: "placed", value: "placed", agent: "conductor:agent:placed-web")),
            address: nil, reason: nil, actor: actor)
        let terminated = try await store.recordInstanceIntent(generationID: generation.id, member: "web[3]", provider: "local", actor: actor)
        try await store.transitionInstance(terminated.id, to: .terminated, providerHandle: nil, address: nil, reason: nil, actor: actor)
        let report = try #require(try await store.status(deployment: "shop", environment: "test"))
        let web = RoleTargets.instances(ofRole: "web", in: report)
        #expect(web.map(\.member) == ["web[0]", "web[1]", "web[2]", "web[10]"])
        #expect(RoleTargets.roles(in: report) == ["db", "web"])

        // Agents for web[0], web[1], db and the one web[10] was placed on; web[2] never came up.
        let running = records.filter { $0.member != "web[2]" && $0.member != "web[10]" }.map { $0.id.uuidString.lowercased() } + ["placed-web"]
        try await RemoteRunFleet.with(kind, inProcess: running, exactNames: true) { fleet in
            let nodes = try web.map { RemoteRunTarget.Node(name: try RoleTargets.agentName(of: $0), label: $0.member) }
            // web[2] never answers, so discovery lasts its whole timeout; 2 s (the CLI's default)
            // was too short for the three live agents to answer on a machine busy with the
            // whole suite (CI saw all four not found).
            let run = try await RemoteRunner(console: fleet.console).run(
                RunRequest(command: .argv(["/bin/echo", "hello"])), on: .nodes(nodes), settings: .init(discoveryTimeout: .seconds(8)))
            #expect(run.nodes.map(\.label) == ["web[0]", "web[1]", "web[10]", "web[2]"])
            #expect(run.nodes.map(\.status) == [.succeeded, .succeeded, .succeeded, .notFound])
            #expect(run.nodes.prefix(3).allSatisfy { $0.result?.stdout == "hello\n" })
            #expect(run.nodes[2].agent == "conductor:agent:placed-web")
            #expect(run.exitStatus == 3)
            #expect(run.summary.hasSuffix("1 not found (web[2] conductor:agent:\(records[2].id.uuidString.lowercased()))"))

            // Named with all present: discovery ends as soon as they answered.
            let started = ContinuousClock.now
            let named = try await RemoteRunner(console: fleet.console).run(
                RunRequest(command: .shell("exit 0")), on: .nodes(Array(nodes.prefix(2))), settings: .init(discoveryTimeout: .seconds(20)))
            #expect(named.exitStatus == 0 && named.nodes.count == 2)
            #expect(started.duration(to: .now) < .seconds(10))
        }
    }

    /// A node that dies after discovery, before its batch: the broker returns its request
    /// (sent mandatory), so it is reported at once, not after its 30 s deadline.
    @Test(.timeLimit(.minutes(1)), arguments: LaunchBusKind.all)
    func aNodeGoneBeforeItsBatchIsReportedAtOnce(_ kind: LaunchBusKind) async throws {
        try await RemoteRunFleet.with(kind, inProcess: ["a-0"], processes: ["b-0"]) { fleet in
            let pids = fleet.processes.map(\.processIdentifier)
            let started = ContinuousClock.now
            let report = try await RemoteRunner(console: fleet.console).run(
                RunRequest(command: .shell("sleep 1"), timeoutSeconds: 30), on: .matching(fleet.predicate, expect: 2),
                settings: .init(batch: .count(1), discoveryTimeout: .seconds(10))
            ) { progress in
                if case .batchStarted(1, _, _) = progress {
                    for pid in pids { kill(pid, SIGKILL) }
                }
            }
            #expect(report.nodes.map(\.status) == [.succeeded, .noAnswer])
            #expect(report.nodes[1].error?.contains("unreachable: the broker returned the request") == true, "\(report.nodes[1])")
            #expect(started.duration(to: .now) < .seconds(15))
        }
    }

    /// The most intervals that contain one instant.
    static func maximumOverlap(_ intervals: [(Int, Int)]) -> Int {
        var events: [(time: Int, change: Int)] = []
        for (start, end) in intervals {
            events.append((start, 1))
            events.append((end, -1))
        }
        // An end and a start at the same instant do not overlap: ends first.
        events.sort { lhs, rhs in lhs.time != rhs.time ? lhs.time < rhs.time : lhs.change < rhs.change }
        var current = 0
        var most = 0
        for (_, change) in events {
            current += change
            most = max(most, current)
        }
        return most
    }
}

/// Agents for a remote-run test, on a bus the test owns (or RabbitMQ): some in this
/// process, some `conductor agent` processes; all carry a custom fact unique to the test.
struct RemoteRunFleet {
    let console: MeshConsole
    /// The console's login (trusted by the agents).
    let consoleURL: String
    let directory: String
    let prefix: String
    let group: String
    let processes: [Process]
    let exactNames: Bool

    var predicate: Mesh.Predicate { .compare(.eq, .property("custom.run_group"), .literal(.string(self.group))) }

    func agentName(_ suffix: String) -> String {
        "conductor:agent:" + (self.exactNames ? suffix : "\(self.prefix)-\(suffix)")
    }

    static let logger = Logger(label: "test.run", factory: { _ in SwiftLogNoOpLogHandler() })

    static func with(
        _ kind: LaunchBusKind, inProcess: [String], refusing: [String] = [], processes: [String] = [], exactNames: Bool = false,
        _ body: (RemoteRunFleet) async throws -> Void
    ) async throws {
        var broker: BrokerServer?
        let consoleURL: String
        let agentURL: String
        let trusted: String
        switch kind {
        case .embedded:
            let users = [BrokerUser(name: "conductor", password: "c-secret"), BrokerUser(name: "agent", password: "a-secret")]
            let started = try await TestBroker.start(users: users, logger: Self.logger)
            let port = started.port
            broker = started.server
            consoleURL = "amqp://conductor:c-secret@127.0.0.1:\(port)/%2F"
            agentURL = "amqp://agent:a-secret@127.0.0.1:\(port)/%2F"
            trusted = "conductor"
        case .rabbitMQ:
            consoleURL = try #require(LaunchBusKind.rabbitMQURL)
            agentURL = consoleURL
            trusted = "guest"
        }
        let directory = try LaunchHarness.temporaryDirectory()
        let prefix = "rr\(UUID().uuidString.prefix(6).lowercased())"
        let group = UUID().uuidString.lowercased()
        let facts = directory + "/facts.d"
        try FileManager.default.createDirectory(atPath: facts, withIntermediateDirectories: true)
        try Data(#"{"run_group": "\#(group)"}"#.utf8).write(to: URL(fileURLWithPath: facts + "/group.json"))
        let instance = { (suffix: String) in exactNames ? suffix : "\(prefix)-\(suffix)" }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let agentBroker = try AMQPConnectionConfiguration(url: agentURL)
        for (suffix, trustedUser) in inProcess.map({ ($0, trusted) }) + refusing.map({ ($0, "somebody-else") }) {
            let configuration = AgentConfiguration(
                broker: agentBroker, instanceID: instance(suffix), stateDirectory: "\(directory)/state/\(suffix)", factsDirectory: facts,
                heartbeatInterval: .seconds(5), refreshInterval: .seconds(60), trustedUser: trustedUser, shutdownGracePeriod: .seconds(1))
            services.append(.init(service: try AgentService(configuration: configuration, logger: Self.logger)))
        }
        var started: [Process] = []
        defer {
            for process in started where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        for suffix in processes {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: LaunchHarness.conductorBinary)
            process.arguments = [
                "agent", "--broker", agentURL, "--instance-id", instance(suffix), "--state-dir", "\(directory)/state/\(suffix)",
                "--facts-dir", facts, "--trusted-user", trusted, "--heartbeat-interval", "5", "--log-level", "error",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            started.append(process)
        }
        let console = try await MeshConsole.connect(AMQPConnectionConfiguration(url: consoleURL))
        let serviceGroup = ServiceGroup(configuration: .init(services: services, logger: Self.logger))
        let fleet = RemoteRunFleet(console: console, consoleURL: consoleURL, directory: directory, prefix: prefix, group: group, processes: started, exactNames: exactNames)
        let total = inProcess.count + refusing.count + processes.count
        let outcome: Result<Void, any Error> = await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try? await serviceGroup.run() }
            let outcome: Result<Void, any Error>
            do {
                // Ready once every agent answers a locate for this test's group.
                let readyBy = ContinuousClock.now + .seconds(60)
                while try await console.locate(where: fleet.predicate, timeout: .seconds(2), expectedAgents: total).count < total {
                    guard ContinuousClock.now < readyBy else { throw RemoteRunFleetError(message: "the \(total) agents did not all come up within 60 s") }
                }
                try await body(fleet)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await serviceGroup.triggerGracefulShutdown()
            await tasks.waitForAll()
            return outcome
        }
        for process in started where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for suffix in inProcess + refusing + processes {
            if let name = try? AgentName(instance: instance(suffix)) { _ = try? await console.deleteJobInbox(of: name) }
        }
        try? await console.close()
        try? await broker?.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
        try outcome.get()
    }
}

struct RemoteRunFleetError: Error, CustomStringConvertible {
    var message: String
    var description: String { self.message }
}
