import AMQPClient
import Foundation
import Mesh
import MeshClient
import Testing

@testable import Conductor

/// `live_agents` and the fan-outs that use it (`conductor facts`, `conductor run --all`):
/// a real bus, a coordinator, 20 agents in this process and two `conductor agent`
/// processes, one killed and one stopped (SIGSTOP) while the registry still lists them.
/// Every assertion is on why a collection ended and who answered, never on wall time.
@Suite struct LiveAgentsTests {
    @Test(.timeLimit(.minutes(2)), arguments: LaunchBusKind.all)
    func factsAndRunEndOnceEveryLiveAgentAnsweredAndNameTheSilentOnes(_ kind: LaunchBusKind) async throws {
        let live = (0..<20).map { String(format: "l-%02d", $0) }
        try await RemoteRunFleet.with(kind, inProcess: live, processes: ["killed", "stopped"]) { fleet in
            defer { for process in fleet.processes where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            let scope = "t-\(UUID().uuidString.prefix(8).lowercased())"
            var configuration = try AMQPConnectionConfiguration(url: fleet.consoleURL)
            configuration.recovery = .disabled
            let coordinator = try CoordinatorService(broker: configuration, scope: scope, logger: CoordinationHarness.logger, registrySweep: .milliseconds(300))
            let running = Task { try await coordinator.run() }
            defer { running.cancel() }
            try await coordinator.waitUntilReady()
            let client = try await CoordinatorClient.using(fleet.console.connection, scope: scope)
            defer { Task { await client.close() } }

            // This test's agents only: on a shared RabbitMQ other tests' agents are live too.
            let ours = LiveAgentsRequest(where: fleet.predicate, attributes: true)
            var list = try await client.liveAgents(ours)
            for _ in 0..<100 where !(list.complete && list.agents.count == 22) {
                try await Task.sleep(for: .milliseconds(100))
                list = try await client.liveAgents(ours)
            }
            #expect(list.complete)
            #expect(Set(list.agents.map(\.name.description)) == Set((live + ["killed", "stopped"]).map(fleet.agentName)))
            #expect(list.agents.allSatisfy { $0.heartbeatInterval == 5 && $0.attributes["custom"]?[path: "run_group"] == .string(fleet.group) })
            let names = list.agents.map(\.name)
            let query = QueryRequest(what: .object, schemaID: MeshSchema.hostClassID, where: fleet.predicate)

            // Every live agent answers: the query ends for that reason, well before its 30 s.
            let all = try await fleet.console.query(query, to: names, timeout: .seconds(30))
            #expect(all.ended == .allLiveAnswered)
            #expect(all.answers.objects.count == 22)
            #expect(all.silent.isEmpty && all.unreachable.isEmpty)

            // The run engine with the registry's live set: discovery ends as every live agent
            // answered, and every node's result is counted.
            let run = try await RemoteRunner(console: fleet.console).run(
                RunRequest(command: .argv(["true"]), timeoutSeconds: 20), on: .matching(fleet.predicate, expect: nil),
                settings: .init(discoveryTimeout: .seconds(30), liveAgents: names))
            #expect(run.discoveryEnded == .allLiveAnswered)
            #expect(run.agents(.succeeded).count == 22, "\(run.summary)")

            if kind == .embedded {
                // The CLI: the same early end, and the fallback when no coordinator serves the scope.
                let facts = try await CLIProcess.run(
                    ["facts", "--json", "--broker", fleet.consoleURL, "--scope", scope, "--where", "custom.run_group=\(fleet.group)", "--timeout", "30s"], timeout: 60)
                let answer = try MeshValue(json: facts.stdout)
                #expect(facts.status == 0, "\(facts.stderr)")
                #expect(answer[path: "ended"] == .string("all_live_answered"), "\(facts.stdout) \(facts.stderr)")
                #expect(answer[path: "discovery.source"] == .string("registry"))
                #expect(answer[path: "agents"]?.listValue?.count == 22)

                let fallback = try await CLIProcess.run(
                    ["facts", "--json", "--broker", fleet.consoleURL, "--scope", "nobody-here", "--where", "custom.run_group=\(fleet.group)", "--timeout", "1s"],
                    timeout: 60)
                let broadcast = try MeshValue(json: fallback.stdout)
                #expect(fallback.status == 0, "\(fallback.stderr)")
                #expect(broadcast[path: "discovery.source"] == .string("broadcast"))
                #expect(broadcast[path: "discovery.reason"]?.stringValue?.contains("no coordinator") == true, "\(fallback.stdout)")
                #expect(broadcast[path: "ended"] == .string("timeout"))
                #expect(broadcast[path: "agents"]?.listValue?.count == 22)

                let cliRun = try await CLIProcess.run(
                    ["run", "--json", "--broker", fleet.consoleURL, "--scope", scope, "--all", "--discovery-timeout", "30s", "--", "true"], timeout: 60)
                let ran = try MeshValue(json: cliRun.stdout)
                #expect(cliRun.status == 0, "\(cliRun.stderr)")
                #expect(ran[path: "discovery.ended"] == .string("all_live_answered"), "\(cliRun.stdout)")
                #expect(ran[path: "summary.succeeded"]?.listValue?.count == 22)
            }

            // One agent killed, one stopped: both stay in the registry (three heartbeat
            // intervals), so the query names them instead of ending as if all had answered.
            let killed = fleet.processes[0].processIdentifier
            let stopped = fleet.processes[1].processIdentifier
            kill(killed, SIGKILL)
            kill(stopped, SIGSTOP)
            defer { kill(stopped, SIGKILL) }
            let after = try await client.liveAgents(ours)
            #expect(after.agents.count == 22)
            let partial = try await fleet.console.query(query, to: after.agents.map(\.name), timeout: .seconds(2))
            #expect(partial.ended == .timeout)
            #expect(partial.answers.objects.count == 20)
            #expect(partial.silent.map(\.description).contains(fleet.agentName("stopped")))
            // The killed agent's request queue is gone with its connection, so the broker
            // returns the request (unreachable), unless the query went out before the broker
            // saw the connection drop (then it is silent).
            #expect(Set((partial.silent + partial.unreachable).map(\.description)) == [fleet.agentName("killed"), fleet.agentName("stopped")])

            let rerun = try await RemoteRunner(console: fleet.console).run(
                RunRequest(command: .argv(["true"]), timeoutSeconds: 20), on: .matching(fleet.predicate, expect: nil),
                settings: .init(discoveryTimeout: .seconds(2), liveAgents: after.agents.map(\.name)))
            #expect(rerun.discoveryEnded == .timeout)
            #expect(Set(rerun.agents(.silent)) == [fleet.agentName("killed"), fleet.agentName("stopped")], "\(rerun.summary)")
            #expect(rerun.agents(.succeeded).count == 20)
            #expect(rerun.exitStatus == 3)
            #expect(rerun.summary.contains("2 went silent"))
        }
    }
}

/// The registry alone, with the time given.
@Suite struct AgentRegistryTests {
    let web = AgentInfo(name: try! AgentName(instance: "web-1"), epoch: 3, timestamp: 0, heartbeatInterval: 10, attributes: ["os": "linux"])
    let db = AgentInfo(name: try! AgentName(instance: "db-1"), epoch: 1, timestamp: 0, heartbeatInterval: 1, attributes: ["os": "bsd"])

    @Test func incompleteUntilTheSweepHasPassed() {
        var registry = AgentRegistry(sweepMilliseconds: 2_000)
        #expect(registry.list(LiveAgentsRequest(), now: 0).complete == false)
        registry.listening(at: 1_000)
        registry.heard(self.web, at: 1_100)
        #expect(registry.list(LiveAgentsRequest(), now: 2_999).complete == false)
        let list = registry.list(LiveAgentsRequest(), now: 3_000)
        #expect(list.complete && list.listeningMilliseconds == 2_000 && list.agents.map(\.name) == [self.web.name])
        registry.deaf()
        #expect(registry.list(LiveAgentsRequest(), now: 4_000).complete == false)
    }

    @Test func liveForThreeOfItsOwnIntervals() {
        var registry = AgentRegistry()
        registry.listening(at: 0)
        #expect(registry.heard(self.web, at: 1_000) == .new)
        #expect(registry.heard(self.db, at: 1_000) == .new)
        #expect(registry.list(LiveAgentsRequest(), now: 3_999).agents.map(\.name) == [self.db.name, self.web.name])
        // db beats every second: three seconds of silence and it is gone; web every ten.
        #expect(registry.list(LiveAgentsRequest(), now: 4_000).agents.map(\.name) == [self.web.name])
        #expect(registry.list(LiveAgentsRequest(), now: 31_000).agents.isEmpty)
        #expect(registry.count == 0)
    }

    @Test func aHigherEpochIsARestartALowerOneIsStale() {
        var registry = AgentRegistry()
        registry.heard(self.web, at: 0)
        var older = self.web
        older.epoch = 2
        #expect(registry.heard(older, at: 500) == .stale)
        #expect(registry.list(LiveAgentsRequest(), now: 600).agents.first?.lastHeartbeat == 0)
        var restarted = self.web
        restarted.epoch = 4
        #expect(registry.heard(restarted, at: 700) == .restarted)
        #expect(registry.heard(restarted, at: 800) == .refreshed)
        let entry = registry.list(LiveAgentsRequest(), now: 900).agents.first
        #expect(entry?.epoch == 4 && entry?.lastHeartbeat == 800)
    }

    @Test func refusedHeartbeatsAreCountedWhileTheyLastAndLoggedOnce() {
        var registry = AgentRegistry()
        let first = registry.refused(self.db, at: 0)
        let again = registry.refused(self.db, at: 1_000)
        #expect(first && !again)
        let list = registry.list(LiveAgentsRequest(), now: 1_500)
        #expect(list.agents.isEmpty && list.ignored == 1)
        #expect(registry.list(LiveAgentsRequest(), now: 4_000).ignored == 0)
        let back = registry.refused(self.db, at: 5_000)
        #expect(back)
    }

    @Test func predicateOverHeartbeatValuesAndAttributesOnRequest() throws {
        var registry = AgentRegistry()
        registry.heard(self.web, at: 0)
        registry.heard(self.db, at: 0)
        let linux = try Mesh.Predicate.parse("os=linux")
        let list = registry.list(LiveAgentsRequest(where: linux, attributes: false), now: 10)
        #expect(list.agents.map(\.name) == [self.web.name])
        #expect(list.agents[0].attributes.isEmpty)
        let named = registry.list(LiveAgentsRequest(where: try Mesh.Predicate.parse("_instance=db-1")), now: 10)
        #expect(named.agents.map(\.name) == [self.db.name] && named.agents[0].attributes["os"] == "bsd")
        // The wire shape survives a round trip.
        #expect(try LiveAgentList(arguments: named.arguments) == named)
        #expect(try LiveAgentsRequest(arguments: LiveAgentsRequest(where: linux, attributes: false).arguments) == LiveAgentsRequest(where: linux, attributes: false))
    }
}
