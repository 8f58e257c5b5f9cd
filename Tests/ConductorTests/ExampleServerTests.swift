import Conductor
import Foundation
import Testing

/// The example's scripts check that the server they started is the one answering: a
/// database port another server already holds (here one that says OK to any password)
/// fails the db service with a clear message, instead of a configured deployment whose
/// webs talk to a stranger.
@Test(.timeLimit(.minutes(2))) func aPortAnotherServerHoldsFailsTheExampleInsteadOfConfiguringIt() async throws {
    let impostor = Process()
    impostor.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    impostor.arguments = [
        "python3", "-c",
        """
        import socketserver
        class Yes(socketserver.StreamRequestHandler):
            def handle(self):
                self.rfile.readline()
                self.wfile.write(b"OK\\n")
        # Like db.py: an earlier run's connections in TIME_WAIT must not keep it from binding.
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer(("127.61.70.2", 15432), Yes).serve_forever()
        """,
    ]
    impostor.standardInput = FileHandle.nullDevice
    impostor.standardOutput = FileHandle.nullDevice
    impostor.standardError = FileHandle.nullDevice
    try impostor.run()
    // Never a blocking waitUntilExit: it would hold one of the cooperative pool's threads.
    defer { kill(impostor.processIdentifier, SIGKILL) }
    // Listening before the launch.
    var ready = false
    for _ in 0..<100 where !ready {
        ready = try await ServerProbe.ask(["who", "127.61.70.2", "15432"]) == ["OK"]
        if !ready { try await Task.sleep(for: .milliseconds(100)) }
    }
    try #require(ready, "the impostor did not start")

    try await LaunchHarness.with(prefix: (127, 61, 70), waitBudget: .seconds(10)) { harness in
        let result = try await harness.launcher().launch(LaunchRequest(file: LaunchTests.repository + "/examples/webapp/deployable.yml"))
        #expect(!result.configured)
        let db = try #require(result.members.first { $0.member == "db" })
        #expect(db.state == "failed")
        let said = ([db.reason ?? ""] + db.services.map { $0.output ?? "" }).joined(separator: "\n")
        #expect(said.contains("127.61.70.2:15432"), "\(said)")
        #expect(said.contains("another server holds the port") || said.contains("Address already in use"), "\(said)")
        #expect(result.members.filter { $0.member != "db" }.allSatisfy { $0.state != "configured" })
        try await harness.launcher().terminate(deployment: "webapp", environment: "default")
    }
}
