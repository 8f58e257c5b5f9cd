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
        socketserver.ThreadingTCPServer(("127.61.70.2", 15432), Yes).serve_forever()
        """,
    ]
    impostor.standardInput = FileHandle.nullDevice
    impostor.standardOutput = FileHandle.nullDevice
    impostor.standardError = FileHandle.nullDevice
    try impostor.run()
    defer {
        impostor.terminate()
        impostor.waitUntilExit()
    }
    // Listening before the launch: it answers the same OK the test expects of it.
    let ready = await CLIProcess.waitFor(seconds: 20) {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import socket; socket.create_connection(('127.61.70.2', 15432), 1)"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
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
