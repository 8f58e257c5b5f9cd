import Foundation
import Testing
import TestSupport

/// Listeners beyond loopback (issue 13): without TLS they are refused unless `--insecure`,
/// before anything binds, with the reason; with TLS, or loopback, or `--insecure`, they start.
@Suite("listening beyond loopback", .timeLimit(.minutes(1)))
struct ListenBeyondLoopbackCLITests {
    static let usage: Int32 = 64

    @Test("launch, serve and fwd refuse --bus-listen and --http beyond loopback in clear text, before anything starts")
    func launchServeAndFwdRefuseClearText() async throws {
        let state = NSTemporaryDirectory() + "conductor-listen-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let deployable = Self.examples + "/webapp/deployable.yml"
        let bus = "--bus-listen 0.0.0.0 would carry agents' passwords and jobs in clear text to other machines; give --bus-tls-cert and --bus-tls-key, or --insecure to accept that"
        let http = "--http 0.0.0.0:0 would carry instances' tokens and configurations (their secrets included) in clear text to other machines; give --http-tls-cert and --http-tls-key, or --insecure to accept that"
        let cases: [([String], String)] = [
            (["launch", deployable, "--state-dir", state, "--bus-listen", "0.0.0.0"], bus),
            (["launch", deployable, "--state-dir", state, "--detach", "--bus-listen", "0.0.0.0"], bus),
            (["launch", deployable, "--state-dir", state, "--http", "0.0.0.0:0"], http),
            (["serve", "--state-dir", state, "--bus-listen", "0.0.0.0"], bus),
            (["serve", "--state-dir", state, "--bus-listen", "10.231.30.1"], bus.replacingOccurrences(of: "0.0.0.0", with: "10.231.30.1")),
            (["serve", "--state-dir", state, "--bus-listen", "::"], bus.replacingOccurrences(of: "0.0.0.0", with: "::")),
            (["serve", "--state-dir", state, "--http", "0.0.0.0:0"], http),
            // TLS on the bus does not make a clear-text HTTP API safe.
            (["serve", "--state-dir", state, "--bus-listen", "0.0.0.0", "--bus-tls-cert", "c.pem", "--bus-tls-key", "k.pem", "--http", "0.0.0.0:0"], http),
            (["fwd", "webapp", "--state-dir", state, "--bus-listen", "0.0.0.0"], bus),
            (["fwd", "webapp", "--state-dir", state, "--http", "0.0.0.0:0"], http),
        ]
        for (arguments, message) in cases {
            let run = try await CLI.run(arguments, timeout: 30)
            #expect(run.status == Self.usage, "\(arguments): \(run.stdout) \(run.stderr)")
            #expect(run.stderr.contains(message), "\(arguments): \(run.stderr)")
            #expect(!run.stdout.contains("embedded broker") && !run.stdout.contains("HTTP API on"), "\(arguments): \(run.stdout)")
        }
        #expect(!FileManager.default.fileExists(atPath: state), "a refused command created its state directory")

        // Loopback needs neither TLS nor --insecure; the TLS files come with the bus only.
        let pairless = try await CLI.run(["launch", deployable, "--state-dir", state, "--bus-tls-cert", "c.pem"], timeout: 30)
        #expect(pairless.status == Self.usage && pairless.stderr.contains("--bus-tls-cert and --bus-tls-key go together"), "\(pairless.stderr)")
        let external = try await CLI.run(
            ["launch", deployable, "--state-dir", state, "--broker", "amqp://u:p@127.0.0.1:1/%2F", "--bus-tls-cert", "c.pem", "--bus-tls-key", "k.pem"],
            timeout: 30)
        #expect(external.status == Self.usage && external.stderr.contains("are for the embedded broker"), "\(external.stderr)")
    }

    @Test("launch, serve and fwd --help explain the bus's TLS flags and --insecure")
    func helpExplainsTLSAndInsecure() async throws {
        for command in ["launch", "serve", "fwd"] {
            let help = try await CLI.run([command, "--help"])
            for text in ["--bus-listen", "--bus-tls-cert", "--bus-tls-key", "--bus-tls-ca", "--insecure", "subject alternative names"] {
                #expect(help.stdout.contains(text), "\(command) --help misses \(text)")
            }
        }
        let broker = try await CLI.run(["broker", "--help"])
        for text in ["--tls-host", "--insecure", "Beyond loopback"] { #expect(broker.stdout.contains(text), "broker --help misses \(text)") }
    }

    @Test("broker refuses a plain --listen or an admin API beyond loopback without --insecure; its amqps listener may go there")
    func brokerRefusesClearTextBeyondLoopback() async throws {
        let listen = try await CLI.run(["broker", "--listen", "0.0.0.0:0", "--no-persistence"], timeout: 30)
        #expect(listen.status == Self.usage)
        #expect(listen.stderr.contains(
            "--listen 0.0.0.0:0 would carry passwords and messages in clear text to other machines; listen on loopback and take other machines over TLS (--tls-host 0.0.0.0 --tls-port 5671 with --tls-cert and --tls-key), or --insecure to accept that"),
            "\(listen.stderr)")
        #expect(!listen.stdout.contains("listening"))
        // Port-only means every address.
        let portOnly = try await CLI.run(["broker", "--listen", ":0", "--no-persistence"], timeout: 30)
        #expect(portOnly.status == Self.usage && portOnly.stderr.contains("--listen :0 would carry passwords"), "\(portOnly.stderr)")
        let certificates = try await TestCertificates.files()
        // An amqps listener beside it does not make the plain one safe.
        let besideTLS = try await CLI.run(
            ["broker", "--listen", "0.0.0.0:0", "--no-persistence", "--tls-port", "0", "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey],
            timeout: 30)
        #expect(besideTLS.status == Self.usage && besideTLS.stderr.contains("--listen 0.0.0.0:0 would carry"), "\(besideTLS.stderr)")
        let admin = try await CLI.run(["broker", "--listen", "127.0.0.1:0", "--no-persistence", "--http-port", "0", "--http-host", "0.0.0.0"], timeout: 30)
        #expect(admin.status == Self.usage)
        #expect(admin.stderr.contains(
            "--http-host 0.0.0.0 would carry administrators' passwords and the admin API in clear text to other machines; keep it on loopback (it has no TLS), or --insecure to accept that"),
            "\(admin.stderr)")

        // Plain on loopback, amqps for everyone else: no --insecure needed.
        let tlsOnly = try await Self.announced(
            ["broker", "--listen", "127.0.0.1:0", "--no-persistence", "--log-level", "warning", "--tls-host", "0.0.0.0", "--tls-port", "0",
             "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey], lines: 2)
        #expect(tlsOnly.first?.hasPrefix("conductor broker listening on amqp://127.0.0.1:") == true, "\(tlsOnly)")
        #expect(tlsOnly.contains { $0.hasPrefix("conductor broker listening on amqps://0.0.0.0:") }, "\(tlsOnly)")

        // --insecure: accepted, as asked.
        let insecure = try await Self.announced(["broker", "--listen", "0.0.0.0:0", "--insecure", "--no-persistence", "--log-level", "warning"], lines: 1)
        #expect(insecure.first?.hasPrefix("conductor broker listening on amqp://0.0.0.0:") == true, "\(insecure)")
    }

    /// The first `lines` lines a broker announces; it is stopped then.
    static func announced(_ arguments: [String], lines: Int) async throws -> [String] {
        try await offloaded {
            let started = try ConductorBinary.startAnnouncing(arguments, lines: lines)
            started.process.terminate()
            started.process.waitUntilExit()
            return started.lines
        }
    }

    static var examples: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples").path
    }
}
