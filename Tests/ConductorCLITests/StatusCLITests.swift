import Foundation
import Testing

@Suite("conductor status", .timeLimit(.minutes(2)))
struct StatusCLITests {
    /// A launch that fails, then exits (its instances terminated, their own reasons gone):
    /// the text status must still say why, as `--json` does.
    @Test("text status of a failed deployment names why it failed, per member and per job")
    func failedDeploymentSaysWhy() async throws {
        let state = NSTemporaryDirectory() + "conductor-status-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        try """
            name: broken
            instances:
              db:
                services:
                  server: {script: "echo 'cannot bind 5432' >&2; exit 1"}
              web:
                services:
                  app: {script: "true", after: [db.server]}
            """.write(toFile: state + "/broken.yml", atomically: true, encoding: .utf8)
        let launch = try await CLI.run(
            ["launch", state + "/broken.yml", "--state-dir", state, "--local-addresses", "127.61.77", "--exit-when-configured", "--wait-budget", "20"], timeout: 90)
        #expect(launch.status == 1, "\(launch.stdout)\n\(launch.stderr)")

        let json = try await CLI.run(["status", "broken", "--state-dir", state, "--json"])
        #expect(json.stdout.contains("cannot bind 5432"), "\(json.stdout)")
        let text = try await CLI.run(["status", "broken", "--state-dir", state])
        #expect(text.status == 0)
        #expect(text.stdout.contains("generation 1 failed: db: job failed, service server exited 1: cannot bind 5432"), "\(text.stdout)")
        #expect(text.stdout.contains("web: blocked: needs db.server to complete, but db failed"), "\(text.stdout)")
        #expect(text.stdout.contains("      job configure ") && text.stdout.contains(" failed\n"), "\(text.stdout)")
    }
}
