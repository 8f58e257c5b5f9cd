import AMQPClient
import ArgumentParser
import Foundation
import PerfTest

/// `conductor perf-test`: a load generator for any AMQP 0-9-1 broker, in the spirit of
/// RabbitMQ's PerfTest.
struct PerfTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perf-test",
        abstract: "Measure an AMQP 0-9-1 broker: publish and consume rates, confirms, latency.",
        discussion: """
            Producers publish SIZE-byte messages to one queue through the default exchange; \
            consumers take them with a prefetch window and acknowledge once per read burst. \
            Every second a line reports the rates of that second; at the end a summary (or, \
            with --json, one JSON object) reports average rates and publish-to-delivery \
            latency percentiles. Latency is measured from a timestamp in the first 8 body \
            bytes, so it needs --size 8 or more. Works against any AMQP 0-9-1 broker \
            (RabbitMQ included); the queue is declared auto-delete and disappears with the \
            last consumer.

            Example: conductor perf-test --url amqp://guest:guest@127.0.0.1:5672/%2F --size 16 --time 10
            """
    )

    @Option(help: "Broker URL: amqp://USER:PASSWORD@HOST:PORT/VHOST (vhost \"/\" is %2F).")
    var url = "amqp://guest:guest@127.0.0.1:5672/%2F"

    @Option(help: "Message body size in bytes.")
    var size = 16

    @Option(help: "Number of producer connections.")
    var producers = 1

    @Option(help: "Number of consumer connections.")
    var consumers = 1

    @Option(help: "How long to run, in seconds.")
    var time = 10

    @Option(help: "Queue to use (default: a fresh perf-test-<random> queue).")
    var queue: String?

    @Option(help: "Consumer prefetch (basic.qos prefetch_count).")
    var prefetch: UInt16 = 1000

    @Option(help: "Put producers in confirm mode with at most this many unconfirmed messages each (0: no confirms).")
    var confirm = 0

    @Option(help: "Limit each producer to this many messages per second (0: as fast as possible).")
    var rate = 0

    @Flag(help: "Consume without acknowledgements (no-ack).")
    var autoAck = false

    @Flag(help: "Declare the queue durable and publish persistent (delivery mode 2) messages.")
    var persistent = false

    @Flag(help: "Print the final report as one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard self.size >= 0 else { throw ValidationError("--size must be 0 or more") }
        guard self.producers >= 0, self.consumers >= 0, self.producers + self.consumers > 0 else {
            throw ValidationError("need at least one producer or consumer")
        }
        guard (1...86_400).contains(self.time) else { throw ValidationError("--time must be between 1 and 86400 seconds") }
        guard self.confirm >= 0, self.rate >= 0 else { throw ValidationError("--confirm and --rate must be 0 or more") }
        _ = try Self.connection(from: self.url)
    }

    func run() async throws {
        let options = PerfTestOptions(
            connection: try Self.connection(from: self.url),
            queue: self.queue ?? "perf-test-\(UInt32.random(in: 0...UInt32.max))",
            size: self.size,
            producers: self.producers,
            consumers: self.consumers,
            seconds: self.time,
            prefetch: self.prefetch,
            confirmWindow: self.confirm,
            rate: self.rate,
            autoAck: self.autoAck,
            persistent: self.persistent
        )
        let json = self.json
        let runner = PerfTestRunner(options: options, progress: { line in
            if !json { print(line) }
        })
        let report: PerfTestReport
        do {
            report = try await runner.run()
        } catch {
            FileHandle.standardError.write(Data("conductor perf-test: \(error)\n".utf8))
            throw ExitCode.failure
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.summary(report))
        }
    }

    static func summary(_ report: PerfTestReport) -> String {
        var lines = [
            String(format: "summary: %.1f s, %d-byte messages, %d producer(s), %d consumer(s)", report.seconds, report.size, report.producers, report.consumers),
            String(format: "sending rate avg: %.0f msg/s", report.publishRate),
            String(format: "receiving rate avg: %.0f msg/s", report.receiveRate),
        ]
        if report.confirmed + report.nacked > 0 {
            lines.append(String(format: "confirm rate avg: %.0f msg/s (%d nacked)", report.confirmRate, report.nacked))
        }
        if let l = report.latencyMicroseconds {
            lines.append(String(format: "latency µs: min %.0f, p50 %.0f, p75 %.0f, p95 %.0f, p99 %.0f, p99.9 %.0f, max %.0f", l.min, l.p50, l.p75, l.p95, l.p99, l.p999, l.max))
        }
        return lines.joined(separator: "\n")
    }

    /// Reads the URL with the client's parser, so both accept the same URLs.
    static func connection(from url: String) throws -> AMQPConnectionConfiguration {
        do {
            return try AMQPConnectionConfiguration(url: url)
        } catch {
            throw ValidationError("not an amqp:// URL: \(url) (\(error.message))")
        }
    }
}
