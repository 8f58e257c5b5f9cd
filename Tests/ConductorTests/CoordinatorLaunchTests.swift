import AMQPClient
import Agent
import Conductor
import Foundation
import Logging
import Mesh
import MeshClient
import ServiceLifecycle
import Testing

/// One coordinator (`CoordinatorService` with the `LaunchCoordinator` methods on it, as
/// `conductor serve` runs them) taking launches over the bus: two deployments at once,
/// their progress and results, `launches`, terminate through it (the other deployment
/// keeps running), and the watch loop re-configuring a member whose source fact changed.
@Suite(.timeLimit(.minutes(1))) struct CoordinatorLaunchTests {
    @Test(arguments: LaunchBusKind.all) func twoDeploymentsThroughOneCoordinator(bus: LaunchBusKind) async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try LaunchReconfigureTests.deployable.write(toFile: directory + "/reconf.yml", atomically: true, encoding: .utf8)
        let webapp = LaunchTests.repository + "/examples/webapp/deployable.yml"
        let prefixes = bus == .embedded ? ("127.61.40", "127.61.41") : ("127.61.42", "127.61.43")
        try await LaunchHarness.with(prefix: (127, 61, 40), bus: bus) { harness in
            let scope = "test-\(UUID().uuidString.prefix(8).lowercased())"
            let configuration = LaunchCoordinator.Configuration(
                stateDirectory: harness.stateDirectory, console: try AMQPConnectionConfiguration(url: harness.consoleURL),
                agentBrokerURL: harness.agentURL, watchInterval: .milliseconds(500),
                providers: { request in
                    [LocalProvider(executable: LaunchHarness.conductorBinary, addressPrefix: LocalProvider.addressPrefix(request.localAddresses ?? "") ?? (127, 0, 0))]
                })
            let launches = LaunchCoordinator(store: harness.store, configuration: configuration)
            let logger = Logger(label: "test.coordinator", factory: { _ in SwiftLogNoOpLogHandler() })
            let endpoint = try CoordinatorService(broker: try AMQPConnectionConfiguration(url: harness.consoleURL), scope: scope, store: harness.store, logger: logger)
            launches.register(on: endpoint)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: endpoint), .init(service: launches)], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                defer { tasks.cancelAll() }
                try await endpoint.waitUntilReady()
                let console = try await MeshConsole.connect(try AMQPConnectionConfiguration(url: harness.consoleURL))
                let client = try LaunchCoordinatorClient(console: console, scope: scope)

                // The agents' login may not launch: a launch runs scripts on the coordinator's machine.
                if bus == .embedded {
                    let agentConsole = try await MeshConsole.connect(try AMQPConnectionConfiguration(url: harness.agentURL))
                    let intruder = try LaunchCoordinatorClient(console: agentConsole, scope: scope)
                    let refused = await #expect(throws: LaunchError.self) {
                        try await intruder.submit(LaunchSubmission(request: LaunchRequest(file: webapp, localAddresses: prefixes.0)))
                    }
                    #expect(refused?.message.contains("only for the coordinator's user 'conductor', not 'agent'") == true, "\(refused?.message ?? "-")")
                    try? await agentConsole.close()
                }

                // Both submitted before either finished: one coordinator, two launches.
                let first = try await client.submit(LaunchSubmission(request: LaunchRequest(file: webapp, localAddresses: prefixes.0), waitBudgetSeconds: 20))
                let second = try await client.submit(LaunchSubmission(request: LaunchRequest(file: directory + "/reconf.yml", localAddresses: prefixes.1), waitBudgetSeconds: 20))
                #expect(first.deployment == "webapp" && second.deployment == "reconf")
                let again = await #expect(throws: LaunchError.self) {
                    try await client.submit(LaunchSubmission(request: LaunchRequest(file: webapp, localAddresses: prefixes.0)))
                }
                #expect(again?.message.contains("being launched by this coordinator already") == true, "\(again?.message ?? "-")")

                let (webappResult, webappEvents) = try await Self.follow(client, first.launchID)
                let (reconfResult, _) = try await Self.follow(client, second.launchID)
                #expect(webappResult.configured, "\(webappResult.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
                #expect(reconfResult.configured, "\(reconfResult.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
                #expect(webappEvents.contains { $0.hasPrefix("configuring db") })
                #expect(webappResult.members.first { $0.member == "db" }?.address == prefixes.0 + ".2")
                let list = try #require(try await client.list(timeout: .seconds(5)))
                #expect(Set(list.launches.map(\.deployment)) == ["webapp", "reconf"])
                #expect(list.launches.allSatisfy { $0.finished && $0.configured })

                // The watch loop: a source fact changes, its consumer gets a new job.
                let work = harness.stateDirectory + "/deployments/reconf@default"
                try "version=7\n".write(toFile: work + "/db/facts.d/version.txt", atomically: true, encoding: .utf8)
                var seen = ""
                for _ in 0..<150 {
                    seen = (try? String(contentsOfFile: work + "/web/work/seen.txt", encoding: .utf8)) ?? ""
                    if seen == "7\n" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(seen == "7\n")
                let progress = try await client.progress(second.launchID, since: 0)
                #expect(progress.events.contains { $0.text.hasPrefix("re-configuring web") }, "\(progress.events.map(\.text))")

                // Terminate one through the coordinator: its instances stop, the other's run on.
                let stopped = try await client.terminate(deployment: "webapp", environment: "default")
                #expect(stopped.stopped.sorted() == ["db", "lb", "web[0]", "web[1]"])
                for member in webappResult.members { #expect(LaunchHarness.processes(carrying: member.instanceID).isEmpty, "\(member.member)") }
                for member in reconfResult.members { #expect(!LaunchHarness.processes(carrying: member.instanceID).isEmpty, "\(member.member)") }
                #expect(try await harness.store.deployment("webapp", environment: "default")?.status == .terminated)
                let unknown = await #expect(throws: LaunchError.self) { try await client.terminate(deployment: "nope", environment: "default") }
                #expect(unknown?.message.contains("no deployment nope@default") == true, "\(unknown?.message ?? "-")")

                // Shutting down stops what it launched.
                launches.stopAccepting()
                #expect(await launches.stopAll() == ["reconf@default"])
                for member in reconfResult.members { #expect(LaunchHarness.processes(carrying: member.instanceID).isEmpty, "\(member.member)") }
                try? await console.close()
                await group.triggerGracefulShutdown()
            }
        }
    }

    static func follow(_ client: LaunchCoordinatorClient, _ id: String) async throws -> (LaunchResult, [String]) {
        var events: [String] = []
        var since = 0
        for _ in 0..<600 {
            let progress = try await client.progress(id, since: since)
            events += progress.events.map(\.text)
            since = progress.next
            if let result = progress.result { return (result, events) }
            if let error = progress.error { throw LaunchError(.refused, error) }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LaunchError(.unreachable, "launch \(id) did not finish")
    }
}
