import AMQPClient
import Agent
@testable import Conductor
import Foundation
import MeshClient
import Testing

/// `provider: agents`: members placed on agents that already run (by their custom fact
/// `role`), configured over the bus like local ones; terminate leaves those agents running.
@Suite(.timeLimit(.minutes(1))) struct LaunchAgentsProviderTests {
    @Test func membersArePlacedOnRunningAgentsByRole() async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try """
            name: placed
            instances:
              db:
                provider: agents
                services:
                  server:
                    script: echo "db on $CONDUCTOR_WORK_DIR" > "$CONDUCTOR_WORK_DIR/seen.txt"
              web:
                count: 2
                provider: agents
                services:
                  app:
                    script: echo "$db_host" > "$CONDUCTOR_WORK_DIR/seen.txt"
                    parameters: {db_host: "${db.ipaddress}"}
            """.write(toFile: directory + "/placed.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: (127, 61, 60)) { harness in
            // Three agents a user started: one db, two web (named so web-a sorts first).
            var agents: [String: Process] = [:]
            defer { for process in agents.values where process.isRunning { process.terminate() } }
            for (name, role, address) in [("db-x", "db", "127.61.60.2"), ("web-b", "web", "127.61.60.4"), ("web-a", "web", "127.61.60.3")] {
                agents[name] = try Self.startAgent(name: name, role: role, address: address, in: directory, broker: harness.agentURL)
            }
            let console = try AMQPConnectionConfiguration(url: harness.consoleURL)
            let options = LaunchOptions(
                stateDirectory: harness.stateDirectory, console: console, agentBrokerURL: harness.agentURL, waitBudget: .seconds(20),
                jobTimeout: .seconds(30), actor: .system)
            let launcher = Launcher(store: harness.store, providers: [AgentsProvider(console: console, locateTimeout: .seconds(1))], options: options)

            // The provider places only on agents that answer: wait until all three joined the bus.
            let mesh = try await MeshConsole.connect(console)
            var joined = 0
            for _ in 0..<40 where joined < 3 {
                joined = try await mesh.locate(timeout: .milliseconds(500), expectedAgents: 3).count
            }
            try? await mesh.close()
            #expect(joined == 3)
            let launched = try await launcher.launch(LaunchRequest(file: directory + "/placed.yml"))
            #expect(launched.configured, "\(launched.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(launched.members.map(\.address) == ["127.61.60.2", "127.61.60.3", "127.61.60.4"])
            #expect(try String(contentsOfFile: directory + "/web-a/work/seen.txt", encoding: .utf8) == "127.61.60.2\n")
            #expect(try String(contentsOfFile: directory + "/web-b/work/seen.txt", encoding: .utf8) == "127.61.60.2\n")
            #expect(try String(contentsOfFile: directory + "/db-x/work/seen.txt", encoding: .utf8).hasPrefix("db on"))

            try await launcher.terminate(deployment: "placed", environment: "default")
            let stillRunning = agents.values.filter { $0.isRunning }.count
            #expect(stillRunning == 3, "terminate stopped an agent it did not start")
        }
    }

    /// `conductor fwd` rolls forward with the standard providers: a launch that died after its
    /// first job finishes on the same agents, none started or stopped.
    @Test func aHaltedLaunchOnAgentsIsRolledForward() async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try """
            name: placedfwd
            instances:
              db:
                provider: agents
                services:
                  server:
                    script: echo "db" >> "$CONDUCTOR_WORK_DIR/runs.txt"
              web:
                provider: agents
                services:
                  app:
                    script: echo "$db_host" > "$CONDUCTOR_WORK_DIR/seen.txt"
                    parameters: {db_host: "${db.ipaddress}"}
            """.write(toFile: directory + "/placedfwd.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: (127, 61, 62)) { harness in
            var agents: [String: Process] = [:]
            defer { for process in agents.values where process.isRunning { process.terminate() } }
            for (name, role, address) in [("db-y", "db", "127.61.62.2"), ("web-y", "web", "127.61.62.3")] {
                agents[name] = try Self.startAgent(name: name, role: role, address: address, in: directory, broker: harness.agentURL)
            }
            let console = try AMQPConnectionConfiguration(url: harness.consoleURL)
            let mesh = try await MeshConsole.connect(console)
            var joined = 0
            for _ in 0..<40 where joined < 2 {
                joined = try await mesh.locate(timeout: .milliseconds(500), expectedAgents: 2).count
            }
            try? await mesh.close()
            #expect(joined == 2)

            func launcher(halt: Int?) -> Launcher {
                let options = LaunchOptions(
                    stateDirectory: harness.stateDirectory, console: console, agentBrokerURL: harness.agentURL, waitBudget: .seconds(20),
                    jobTimeout: .seconds(30), actor: .system)
                let request = LaunchRequest(file: directory + "/placedfwd.yml")
                return Launcher(
                    store: harness.store, providers: LaunchCoordinator.standardProviders(request, console: console), options: options,
                    interruption: halt.map(RollOutInterruptions.afterSendingJobs))
            }
            let halted = try await launcher(halt: 1).launch(LaunchRequest(file: directory + "/placedfwd.yml"))
            #expect(!halted.configured)

            let rolled = try await launcher(halt: nil).rollForward(deployment: "placedfwd", environment: "default")
            #expect(rolled.configured, "\(rolled.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(rolled.members.map(\.address) == ["127.61.62.2", "127.61.62.3"])
            #expect(try String(contentsOfFile: directory + "/web-y/work/seen.txt", encoding: .utf8) == "127.61.62.2\n")
            // The db's job was sent again under its id: the agent answered from its record.
            #expect(try String(contentsOfFile: directory + "/db-y/work/runs.txt", encoding: .utf8) == "db\n")
            #expect(agents.values.allSatisfy { $0.isRunning })
        }
    }

    @Test func tooFewAgentsIsAClearError() async throws {
        try await LaunchHarness.with(prefix: (127, 61, 61)) { harness in
            let provider = AgentsProvider(console: try AMQPConnectionConfiguration(url: harness.consoleURL), locateTimeout: .milliseconds(300))
            let request = InstanceStartRequest(
                deployment: "d", environment: "default", member: "web[1]", ordinal: 0, instanceID: "x", brokerURL: harness.agentURL,
                trustedUser: "conductor", workDirectory: harness.stateDirectory)
            let error = await #expect(throws: ProviderError.self) { try await provider.start(request) }
            #expect(error?.message.contains("web[1] needs agent 2 with custom fact role=web, but 0 answered") == true, "\(error?.message ?? "-")")
        }
    }

    static func startAgent(name: String, role: String, address: String, in directory: String, broker: String) throws -> Process {
        let home = directory + "/" + name
        for sub in ["state", "facts.d", "work"] { try FileManager.default.createDirectory(atPath: home + "/" + sub, withIntermediateDirectories: true) }
        try "role=\(role)\n".write(toFile: home + "/facts.d/role.txt", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LaunchHarness.conductorBinary)
        process.arguments = [
            "agent", "--instance-id", name, "--state-dir", home + "/state", "--facts-dir", home + "/facts.d", "--trusted-user", "conductor",
            "--heartbeat-interval", "1", "--ipaddress", address, "--log-level", "warning",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["CONDUCTOR_BROKER_URL"] = broker
        environment["CONDUCTOR_WORK_DIR"] = home + "/work"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }
}
