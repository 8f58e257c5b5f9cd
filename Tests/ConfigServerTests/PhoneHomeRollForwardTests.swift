import ConfigServer
@testable import Conductor
import Foundation
import Mesh
import TestSupport
import Testing

/// A coordinator that dies mid-launch and a `fwd` with a new HTTP API: the instances keep
/// their tokens, and what they reported or fetched before counts.
@Suite(.timeLimit(.minutes(1)))
struct PhoneHomeRollForwardTests {
    @Test func aRollForwardAnswersTheSameInstancesWithTheirTokens() async throws {
        let file = try PhoneHomeHarness.deployable(PhoneHomeAPITests.sensors)
        try await PhoneHomeHarness.with { harness in
            // The first coordinator stops right after sending its first job (the sensor's),
            // as if it were killed there.
            let first = try harness.launcher(for: file)
            let crashing = Launcher(
                store: harness.store, providers: Array(first.providers.values), options: first.options,
                interruption: RollOutInterruptions.afterSendingJobs(1))
            let launch = Task { try await crashing.launch(LaunchRequest(file: file)) }
            let sensor = try await harness.envFile(deployment: "sensors", member: "sensor")
            let appliance = try await harness.envFile(deployment: "sensors", member: "appliance")
            let put = ["-X", "PUT", "-H", sensor.bearer, "-H", "Content-Type: application/json"]
            #expect(try await HTTPExchange.curl(sensor.paramsURL, put, body: Data("{\"ipaddress\": \"10.9.8.7\", \"custom\": {\"version\": \"7\"}}".utf8)).status == 200)
            let crashed = try await launch.value
            #expect(!crashed.configured)
            // The sensor fetched its configuration before anyone recorded the answer.
            #expect(try await HTTPExchange.poll(sensor.configURL, ["-H", sensor.bearer]) { $0.status != 202 }.status == 200)
            await harness.server.stop()

            // fwd with an API of its own: a new desk, a new port, the same store.
            let desk = PhoneHomeDesk(store: harness.store)
            let server = try await ConfigServer.start(ConfigServer.Settings(host: "127.0.0.1", port: 0), desk: desk)
            desk.baseURL = server.url
            let request = LaunchRequest(file: file)
            let forward = Launcher(
                store: harness.store,
                providers: [LocalProvider(executable: ConductorBinary.path)] + LaunchCoordinator.definedProviders(request, phoneHome: desk),
                options: first.options)
            let rolling = Task { try await forward.rollForward(deployment: "sensors", environment: "default") }
            let configURL = "\(server.url)/configs/v1/\(appliance.instanceID)"
            let ready = try await HTTPExchange.poll(configURL, ["-H", appliance.bearer]) { $0.status != 202 }
            #expect(ready.status == 200, "\(ready.text)")
            #expect(ready.json?[path: "services"]?.mapValue?["config"]?[path: "sensor_host"] == .string("10.9.8.7"))
            let result = try await rolling.value
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(Set(result.members.map(\.instanceID)) == [sensor.instanceID, appliance.instanceID])
            let status = try #require(try await harness.store.status(deployment: "sensors", environment: "default"))
            #expect(status.instances.allSatisfy { $0.jobs.count == 1 && $0.jobs[0].state == .succeeded })
            // One fetch each: the sensor's before the crash counted, it did not fetch again.
            let fetches = try await harness.store.auditTrail(deployment: "sensors", environment: "default", limit: 200)
                .filter { $0.action == "instance.fetch_config" }
            #expect(fetches.count == 2)
            try await forward.terminate(deployment: "sensors", environment: "default")
            await server.stop()
        }
    }
}
