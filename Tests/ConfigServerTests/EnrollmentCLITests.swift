import Foundation
import TestSupport
import Testing

/// An agent started by hand gets a login of its own: `conductor agent invite` on the
/// coordinator's machine, `conductor agent enroll` at its `--http` API, then `conductor
/// agent` from the enrolment alone; the token works once.
@Suite(.timeLimit(.minutes(2)))
struct EnrollmentCLITests {
    @Test func anInvitedAgentEnrollsOnceAndComesUpUnderItsOwnLogin() async throws {
        let state = try PhoneHomeHarness.temporaryDirectory()
        let serveOutput = state + "/serve.out"
        let serve = try Child.start(ConductorBinary.path, ["serve", "--state-dir", state, "--http", "127.0.0.1:0"], stdout: serveOutput)
        defer { serve.stop() }
        let announced = try await Child.waitForLine(in: serveOutput, containing: "HTTP API on http://127.0.0.1:")
        let url = try #require(announced.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") }.map(String.init))

        let invite = try await Child.run(ConductorBinary.path, ["agent", "invite", "--instance-id", "hand-1", "--state-dir", state, "--json"])
        #expect(invite.status == 0, "\(invite.output)")
        let token = try #require(
            (try? JSONSerialization.jsonObject(with: Data(invite.output.utf8)) as? [String: Any])?["token"] as? String, "\(invite.output)")

        let home = state + "/hand-1"
        let enroll = try await Child.run(ConductorBinary.path, ["agent", "enroll", "--url", url, "--token", token, "--state-dir", home])
        #expect(enroll.status == 0, "\(enroll.output)")
        let mode = try FileManager.default.attributesOfItem(atPath: home + "/enrollment.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let grant = try String(contentsOfFile: home + "/enrollment.json", encoding: .utf8)
        #expect(grant.contains("amqp://agent.hand-1:"), "\(grant)")
        #expect(grant.contains("\"trusted_user\" : \"conductor\""), "\(grant)")

        // Once only.
        let again = try await Child.run(ConductorBinary.path, ["agent", "enroll", "--url", url, "--token", token, "--state-dir", state + "/thief"])
        #expect(again.status == 1)
        #expect(again.output.contains("unknown, expired or used already"), "\(again.output)")
        #expect(!FileManager.default.fileExists(atPath: state + "/thief/enrollment.json"))

        // The agent starts from the enrolment: its own login, the queues made for it.
        let facts = state + "/facts.d"
        try FileManager.default.createDirectory(atPath: facts, withIntermediateDirectories: true)
        let agentOutput = state + "/agent.out"
        let agent = try Child.start(
            ConductorBinary.path, ["agent", "--state-dir", home, "--facts-dir", facts, "--heartbeat-interval", "1"], stdout: agentOutput)
        defer { agent.stop() }
        let ready = try await Child.waitForLine(in: agentOutput, containing: "agent ready")
        #expect(ready.contains("queues=provisioned") && ready.contains("user_id=agent.hand-1"), "\(ready)")

        // A shell on the coordinator's machine finds it, through the recipe login.
        let found = try await Child.run(
            ConductorBinary.path, ["facts", "--json", "--expect", "1", "--timeout", "10s"], environment: ["CONDUCTOR_STATE_DIR": state])
        #expect(found.status == 0, "\(found.output)")
        #expect(found.output.contains("conductor:agent:hand-1"), "\(found.output)")

        #expect(await agent.terminate() == 0)
        #expect(await serve.terminate() == 0)
    }
}
