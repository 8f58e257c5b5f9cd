import Foundation
import Testing

@Suite("conductor command line")
struct CLITests {
    @Test("--help lists every subcommand")
    func rootHelp() async throws {
        let result = try await CLI.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: conductor <subcommand>"))
        #expect(result.stdout.contains("broker"))
        #expect(result.stdout.contains("perf-test"))
    }

    @Test("broker --help explains listening, users and flow control")
    func brokerHelp() async throws {
        let result = try await CLI.run(["broker", "--help"])
        #expect(result.status == 0)
        for option in ["--listen", "--definitions", "--user", "--vhost", "--permission", "--heartbeat", "--frame-max", "--queue-max-ready", "--max-memory"] {
            #expect(result.stdout.contains(option), "missing \(option)")
        }
    }

    @Test("perf-test --help explains its options")
    func perfTestHelp() async throws {
        let result = try await CLI.run(["perf-test", "--help"])
        #expect(result.status == 0)
        for option in ["--url", "--size", "--producers", "--consumers", "--time", "--prefetch", "--confirm", "--rate", "--json"] {
            #expect(result.stdout.contains(option), "missing \(option)")
        }
    }

    @Test("facts and run --help say they end once every live agent answered, and what silent means")
    func liveAgentsHelp() async throws {
        for command in ["facts", "run"] {
            let result = try await CLI.run([command, "--help"])
            #expect(result.status == 0)
            // The help text wraps: compare it with its line breaks and indentation collapsed.
            let text = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            for phrase in ["as every live agent answered", "silent", "--broadcast", "--scope", "heartbeat"] {
                #expect(text.contains(phrase), "\(command) --help lacks '\(phrase)'")
            }
        }
    }

    @Test("bad flags are refused with a message, not a crash")
    func badFlags() async throws {
        let listen = try await CLI.run(["broker", "--listen", "nowhere"])
        #expect(listen.status != 0)
        #expect(listen.stderr.contains("--listen must be HOST:PORT"))
        let flow = try await CLI.run(["broker", "--queue-max-ready=-1"])
        #expect(flow.status != 0)
        #expect(flow.stderr.contains("--queue-max-ready and --max-memory must be 0 or more"))
        let url = try await CLI.run(["perf-test", "--url", "http://example"])
        #expect(url.status != 0)
        #expect(url.stderr.contains("not an amqp:// URL"))
    }

    @Test("fwd of an unknown deployment says there is nothing to roll forward, before starting a broker")
    func fwdOfUnknownDeployment() async throws {
        let state = NSTemporaryDirectory() + "conductor-fwd-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: state) }
        let result = try await CLI.run(["fwd", "nope", "--state-dir", state], timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr.contains("nothing to roll forward for nope@default (no such deployment"), "\(result.stderr)")
        #expect(!result.stdout.contains("embedded broker"), "\(result.stdout)")
        #expect(!FileManager.default.fileExists(atPath: state + "/buses"), "a bus was recorded for nothing")
    }

    @Test("perf-test against an unreachable broker fails with the address")
    func unreachable() async throws {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let result = try await CLI.run(["perf-test", "--url", "amqp://guest:guest@127.0.0.1:1/%2F", "--time", "1"], timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot connect to 127.0.0.1:1"))
    }

    @Test("perf-test moves messages through the embedded broker and reports latency")
    func perfTestEndToEnd() async throws {
        let broker = try await BrokerProcess.start()
        let result: CLI.Result
        do {
            result = try await CLI.run(
                ["perf-test", "--url", "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F", "--time", "2", "--size", "64", "--confirm", "100", "--rate", "2000", "--json"],
                timeout: 60
            )
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let published = report?["published"] as? Int ?? 0
        let received = report?["received"] as? Int ?? 0
        let confirmed = report?["confirmed"] as? Int ?? 0
        // 2 s at 2000 msg/s: at most about 4000 (fewer on a loaded machine). The counts are
        // taken at the end of the window, so what is still in flight then (on 2 busy cores,
        // hundreds of milliseconds' worth) is published but not yet confirmed or received.
        #expect(published > 500 && published <= 4100)
        #expect(confirmed >= published / 2 && confirmed <= published)
        #expect(received >= published / 2 && received <= published)
        let latency = report?["latencyMicroseconds"] as? [String: Any]
        #expect((latency?["p50"] as? Double ?? 0) > 0)
    }
}
