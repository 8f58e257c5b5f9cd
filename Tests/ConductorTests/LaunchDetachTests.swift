import Conductor
import Foundation
import Testing

/// `conductor launch --detach` with no coordinator running starts one (`conductor serve`,
/// its own session, recorded in <state-dir>/coordinator.json) and returns once the
/// deployment is configured; a second `--detach` of another deployment goes to the same
/// coordinator; `conductor terminate` stops one deployment through it (the coordinator and
/// the other deployment keep running); SIGTERM stops the coordinator and what it launched.
@Test(.timeLimit(.minutes(1))) func launchDetachLeavesOneSharedCoordinator() async throws {
    let state = try LaunchHarness.temporaryDirectory()
    try LaunchReconfigureTests.deployable.write(toFile: state + "/reconf.yml", atomically: true, encoding: .utf8)
    let recordPath = state + "/coordinator.json"
    defer {
        // Whatever a failing run left behind.
        if let data = FileManager.default.contents(atPath: recordPath),
            let pid = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["pid"] as? NSNumber
        {
            kill(pid.int32Value, SIGTERM)
        }
    }
    let launch = try await CLIProcess.run(
        ["launch", LaunchTests.repository + "/examples/webapp/deployable.yml", "--detach", "--json", "--state-dir", state,
         "--local-addresses", "127.61.10", "--wait-budget", "20"],
        timeout: 45)
    #expect(launch.status == 0, "\(launch.stderr)")
    let result = try JSONDecoder().decode(LaunchResult.self, from: Data(launch.stdout.utf8))
    #expect(result.configured)

    // The launch command has exited; its coordinator and the agents have not.
    let record = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any]
    let pid = try #require((record?["pid"] as? NSNumber)?.int32Value)
    #expect((record?["broker"] as? String)?.hasPrefix("amqp://conductor:") == true)
    #expect(record?["scope"] as? String == "default")
    let permissions = try FileManager.default.attributesOfItem(atPath: recordPath)[.posixPermissions] as? NSNumber
    #expect(permissions?.intValue == 0o600)
    #expect(CoordinatorProcess.isLive(pid), "no background coordinator")
    #expect(getsid(pid) == pid, "the coordinator does not lead its own session")
    for member in result.members {
        let agents = LaunchKillTests.agents(carrying: member.instanceID)
        #expect(agents.count == 1, "\(member.member)")
        #expect(agents.allSatisfy { CoordinatorProcess.parent(of: $0) == pid }, "\(member.member) is not the coordinator's child")
    }
    let status = try await CLIProcess.run(["status", "webapp", "--state-dir", state, "--json"], timeout: 20)
    #expect(status.stdout.contains("\"status\" : \"configured\""), "\(status.stdout)")

    // A second deployment goes to the same coordinator.
    let second = try await CLIProcess.run(
        ["launch", state + "/reconf.yml", "--detach", "--state-dir", state, "--local-addresses", "127.61.11", "--wait-budget", "20"], timeout: 45)
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stdout.contains("submitted to conductor:coordinator:default (pid \(pid))"), "\(second.stdout)")
    let recordAfter = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any]
    #expect((recordAfter?["pid"] as? NSNumber)?.int32Value == pid)
    let secondStatus = try await CLIProcess.run(["status", "reconf", "--state-dir", state, "--json"], timeout: 20)
    #expect(secondStatus.stdout.contains("\"status\" : \"configured\""), "\(secondStatus.stdout)")

    // Terminate one deployment through the coordinator: it keeps serving the other.
    let terminate = try await CLIProcess.run(["terminate", "webapp", "--state-dir", state], timeout: 45)
    #expect(terminate.status == 0, "\(terminate.stderr)")
    #expect(terminate.stdout.contains("4 instance(s) stopped"), "\(terminate.stdout)")
    #expect(terminate.stdout.contains("by the coordinator conductor:coordinator:default (pid \(pid))"), "\(terminate.stdout)")
    for member in result.members { #expect(LaunchHarness.processes(carrying: member.instanceID).isEmpty, "\(member.member)") }
    #expect(CoordinatorProcess.isLive(pid))
    let after = try await CLIProcess.run(["status", "--state-dir", state, "--json"], timeout: 20)
    #expect(after.stdout.contains("\"status\" : \"terminated\""), "\(after.stdout)")

    // SIGTERM: the coordinator stops what it launched, then itself, and removes its record.
    kill(pid, SIGTERM)
    for _ in 0..<300 where CoordinatorProcess.isLive(pid) { try await Task.sleep(for: .milliseconds(100)) }
    #expect(!CoordinatorProcess.isLive(pid))
    #expect(!FileManager.default.fileExists(atPath: recordPath))
    let final = try await CLIProcess.run(["status", "reconf", "--state-dir", state, "--json"], timeout: 20)
    #expect(final.stdout.contains("\"status\" : \"terminated\""), "\(final.stdout)")
}

enum CoordinatorProcess {
    /// Running and not a zombie (its parent, gone, may leave it unreaped for a while).
    static func isLive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[close...].hasPrefix(") Z")
    }

    /// The parent pid, from /proc/<pid>/stat.
    static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }
}
