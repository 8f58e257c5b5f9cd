import Conductor
import Foundation
import Testing

/// `conductor launch --detach` returns once the deployment is configured, leaving a
/// background coordinator (`conductor serve`, its own session) that keeps the embedded
/// broker and the agents; `conductor terminate` stops the instances and it.
@Test(.timeLimit(.minutes(1))) func launchDetachLeavesACoordinatorThatTerminateStops() async throws {
    let state = try LaunchHarness.temporaryDirectory()
    defer {
        // Whatever a failing run left behind.
        let cleanup = try? CLIProcess.start(["terminate", "webapp", "--state-dir", state])
        cleanup?.waitUntilExit()
    }
    let launch = try await CLIProcess.run(
        ["launch", LaunchTests.repository + "/examples/webapp/deployable.yml", "--detach", "--json", "--state-dir", state,
         "--local-addresses", "127.61.10", "--wait-budget", "20"],
        timeout: 45)
    #expect(launch.status == 0, "\(launch.stderr)")
    let result = try JSONDecoder().decode(LaunchResult.self, from: Data(launch.stdout.utf8))
    #expect(result.configured)

    // The launch command has exited; its coordinator and the agents have not.
    let recordPath = state + "/coordinators/webapp@default.json"
    let record = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any]
    let pid = try #require((record?["pid"] as? NSNumber)?.int32Value)
    #expect((record?["broker"] as? String)?.hasPrefix("amqp://conductor:") == true)
    let permissions = try FileManager.default.attributesOfItem(atPath: recordPath)[.posixPermissions] as? NSNumber
    #expect(permissions?.intValue == 0o600)
    #expect(CoordinatorProcess.isLive(pid), "no background coordinator")
    #expect(getsid(pid) == pid, "the coordinator does not lead its own session")
    for member in result.members { #expect(LaunchKillTests.agents(carrying: member.instanceID).count == 1, "\(member.member)") }
    let status = try await CLIProcess.run(["status", "webapp", "--state-dir", state, "--json"], timeout: 20)
    #expect(status.stdout.contains("\"status\" : \"configured\""), "\(status.stdout)")

    // A second detached launch of the same deployment is refused while it serves.
    let again = try await CLIProcess.run(
        ["launch", LaunchTests.repository + "/examples/webapp/deployable.yml", "--detach", "--state-dir", state, "--local-addresses", "127.61.10"],
        timeout: 20)
    #expect(again.status == 1)
    #expect(again.stderr.contains("already has a background coordinator (pid \(pid))"), "\(again.stderr)")

    let terminate = try await CLIProcess.run(["terminate", "webapp", "--state-dir", state], timeout: 45)
    #expect(terminate.status == 0, "\(terminate.stderr)")
    #expect(terminate.stdout.contains("stopped the background coordinator (pid \(pid))"), "\(terminate.stdout)")
    #expect(!CoordinatorProcess.isLive(pid))
    #expect(!FileManager.default.fileExists(atPath: recordPath))
    for member in result.members { #expect(LaunchHarness.processes(carrying: member.instanceID).isEmpty, "\(member.member)") }
}

enum CoordinatorProcess {
    /// Running and not a zombie (its parent, gone, may leave it unreaped for a while).
    static func isLive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[close...].hasPrefix(") Z")
    }
}
