import Conductor
import Foundation
import Testing

/// A foreground `conductor launch` with its embedded broker (the README's first command)
/// is killed with SIGKILL mid-launch: its broker dies with it, its agents live on and keep
/// reconnecting. `conductor fwd` without --broker brings the same bus back (port and users
/// from `<state-dir>/buses/`), the agents reconnect, and the launch finishes with no
/// instance started twice and no job run twice.
@Suite(.timeLimit(.minutes(2)))
struct FwdEmbeddedBusTests {
    @Test func fwdBringsBackTheEmbeddedBrokerOfAKilledLaunch() async throws {
        let prefix = "127.61.9"
        let state = try LaunchHarness.temporaryDirectory()
        defer {
            let cleanup = try? CLIProcess.start(["terminate", "webapp", "--state-dir", state])
            cleanup?.waitUntilExit()
        }
        // Killed once its progress says the db's job was sent (that job takes seconds here)
        // and every member was started.
        let launch = try CLIProcess.start(
            ["launch", try SlowWebapp.copy(into: state), "--state-dir", state, "--local-addresses", prefix,
             "--exit-when-configured", "--json", "--wait-budget", "20"],
            stderrFile: state + "/launch.err")
        let halted = await CLIProcess.waitFor(seconds: 40) { SlowWebapp.dbJobSentAndEveryMemberStarted(progressFile: state + "/launch.err") }
        #expect(halted, "the launch never reached its first job: \((try? String(contentsOfFile: state + "/launch.err", encoding: .utf8)) ?? "")")
        kill(launch.processIdentifier, SIGKILL)
        #expect(await CLIProcess.exits(launch, within: 10))
        try #require(halted)

        // The bus was recorded before any instance was told its URL, and only we can read it.
        let recordPath = state + "/buses/webapp@default.json"
        let port = try #require(EmbeddedBusRecordFile.port(recordPath))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: recordPath)[.posixPermissions] as? Int)
        #expect(mode == 0o600)

        let store = try SQLiteStateStore(path: state + "/state.sqlite")
        let before = try #require(try await store.status(deployment: "webapp", environment: "default"))
        #expect(before.instances.count == 4)
        let handlesBefore = Dictionary(uniqueKeysWithValues: before.instances.map { ($0.instance.id, $0.instance.providerHandle) })
        for item in before.instances {
            #expect(LaunchKillTests.agents(carrying: item.instance.id.uuidString.lowercased()).count == 1, "\(item.instance.member)")
        }

        let fwd = try await CLIProcess.run(
            ["fwd", "webapp", "--state-dir", state, "--json", "--exit-when-configured", "--wait-budget", "20"], timeout: 60)
        #expect(fwd.status == 0, "fwd: \(fwd.stderr)")
        let result = try JSONDecoder().decode(LaunchResult.self, from: Data(fwd.stdout.utf8))
        #expect(result.configured)
        #expect(Set(result.members.map(\.instanceID)) == Set(before.instances.map { $0.instance.id.uuidString.lowercased() }))
        #expect(EmbeddedBusRecordFile.port(recordPath) == port, "fwd kept the recorded bus")

        let after = try #require(try await store.status(deployment: "webapp", environment: "default"))
        #expect(after.instances.count == 4)
        for item in after.instances {
            #expect(item.instance.providerHandle == handlesBefore[item.instance.id] ?? nil, "\(item.instance.member) has a new handle")
            #expect(item.jobs.count == 1 && item.jobs.first?.state == .succeeded, "\(item.instance.member): \(item.jobs)")
        }
        let starts = try await store.auditTrail(deployment: "webapp", environment: "default", limit: 1000)
            .filter { $0.action == "instance.transition" && $0.detail?[path: "to"] == .string("starting") }
        #expect(starts.count == 4, "instances asked to start: \(starts.count)")
        // --exit-when-configured: fwd stopped the instances it served with its broker.
        for item in after.instances {
            #expect(LaunchHarness.processes(carrying: item.instance.id.uuidString.lowercased()).isEmpty, "\(item.instance.member) still runs")
        }
    }
}

private enum EmbeddedBusRecordFile {
    static func port(_ path: String) -> Int? {
        FileManager.default.contents(atPath: path)
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            .flatMap { $0["port"] as? Int }
    }
}
