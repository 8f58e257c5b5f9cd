import AMQPClient
import AMQPProtocol
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TestSupport
import Testing

/// The built `conductor broker` with a data directory, SIGKILLed again and again while a
/// client publishes with confirms and fetches with acks. At the end: every confirmed
/// message was delivered at least once, no message whose ack was on disk came back, and
/// messages not redelivered arrived in publish order.
@Suite("Persistence through kill -9", .timeLimit(.minutes(3)))
struct PersistenceCrashTests {
    /// What the client saw, over every incarnation of the broker.
    final class Ledger: @unchecked Sendable {
        private let lock = NIOLock()
        private var confirmed = Set<Int>()
        private var delivered = Set<Int>()
        /// Acks known to be on disk: sent before a publish that was then confirmed.
        private var durablyAcked = Set<Int>()
        private var violations: [String] = []
        private var lastFresh = -1

        func confirm(_ sequences: [Int]) { self.lock.withLock { self.confirmed.formUnion(sequences) } }
        func acksDurable(_ sequences: [Int]) { self.lock.withLock { self.durablyAcked.formUnion(sequences) } }

        func delivery(_ sequence: Int, redelivered: Bool) {
            self.lock.withLock {
                if self.durablyAcked.contains(sequence) { self.violations.append("\(sequence) came back after its ack was on disk") }
                if !redelivered {
                    if sequence <= self.lastFresh { self.violations.append("\(sequence) arrived after \(self.lastFresh) without the redelivered flag") }
                    self.lastFresh = sequence
                }
                self.delivered.insert(sequence)
            }
        }

        var report: (confirmed: Int, missing: [Int], violations: [String]) {
            self.lock.withLock { (self.confirmed.count, self.confirmed.subtracting(self.delivered).sorted(), self.violations) }
        }
    }

    /// A `conductor broker` child process on a free port.
    final class BrokerChild: @unchecked Sendable {
        let process: Process
        let port: Int

        static func start(directory: String, arguments: [String] = []) async throws -> BrokerChild {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try BrokerChild(directory: directory, arguments: arguments) }) }
            }
        }

        private init(directory: String, arguments: [String]) throws {
            let (process, lines) = try ConductorBinary.startAnnouncing(
                ["broker", "--listen", "127.0.0.1:0", "--data-dir", directory, "--log-level", "error"] + arguments)
            self.process = process
            let text = lines.first ?? ""
            guard let port = ConductorBinary.amqpPort(announcedBy: text) else {
                self.process.terminate()
                throw AMQPError(.connectionRefused, "conductor broker did not start: '\(text)'")
            }
            self.port = port
        }

        func kill() async {
            Foundation.kill(self.process.processIdentifier, SIGKILL)
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    self.process.waitUntilExit()
                    continuation.resume()
                }
            }
        }
    }

    static let queue = "crash"

    /// One incarnation: publish batches with confirms and fetch with acks until the broker
    /// dies (or, with `drain`, until everything published has been fetched). Bodies are
    /// the sequence number, then `padding` bytes after a colon.
    static func session(port: Int, queue: String = Self.queue, padding: Int = 0, next: inout Int, ledger: Ledger, drain: Bool) async {
        do {
            var configuration = try AMQPConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F")
            configuration.recovery = .disabled
            configuration.connectTimeout = .seconds(5)
            let connection = try await AMQPConnection.connect(configuration)
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: queue, durable: true)
            try await channel.confirmSelect()
            // Fetching on a second channel of the same connection keeps the order of acks
            // and publishes on the wire (AMQPClient's waitForConfirms hangs on a channel
            // that also fetched and acked).
            let fetcher = try await connection.openChannel()
            var acksSent: [Int] = []
            for _ in 0..<(drain ? 1 : 10_000) {
                // Acks sent so far are on disk once a publish sent after them is confirmed.
                let acksBefore = acksSent
                if !drain {
                    let batch = Array(next..<(next + 20))
                    for sequence in batch {
                        _ = try channel.publish(Self.body(sequence, padding: padding), routingKey: queue, properties: BasicProperties(deliveryMode: 2))
                    }
                    next += batch.count
                    let nacked = try await channel.waitForConfirms()
                    guard nacked.isEmpty else { Issue.record("nacked: \(nacked)"); return }
                    ledger.confirm(batch)
                    ledger.acksDurable(acksBefore)
                    acksSent.removeFirst(acksBefore.count)
                }
                for _ in 0..<(drain ? 100_000 : 15) {
                    guard let message = try await fetcher.get(queue: queue) else { break }
                    guard let sequence = Int(message.bodyString.prefix { $0 != ":" }), message.body == Self.body(sequence, padding: padding) else {
                        Issue.record("odd body \(message.bodyString.prefix(40))")
                        return
                    }
                    ledger.delivery(sequence, redelivered: message.redelivered)
                    try message.ack()
                    acksSent.append(sequence)
                }
            }
            try await connection.close()
        } catch {
            // The broker was killed under us: expected, the next incarnation carries on.
        }
    }

    static func body(_ sequence: Int, padding: Int) -> ByteBuffer {
        var body = ByteBuffer(string: "\(sequence)")
        if padding > 0 {
            body.writeString(":")
            body.writeRepeatingByte(UInt8(ascii: "a") + UInt8(sequence % 26), count: padding)
        }
        return body
    }

    /// Compaction in the real binary, killed again and again: two messages pinned from the
    /// start (one was delivered and never acked) while 1 KiB messages stream through
    /// 64 KiB segments. The pinned ones come back exactly once, nothing acked on disk comes
    /// back, every confirmed message is delivered, and the files stay few.
    @Test func compactionSurvivesRepeatedKills() async throws {
        let directory = NSTemporaryDirectory() + "conductor-crash-compact-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let small = ["--segment-size", "64KiB"]
        let first = try await BrokerChild.start(directory: directory, arguments: small)
        do {
            let connection = try await QueueFeatureScenarios.connect("amqp://guest:guest@127.0.0.1:\(first.port)/%2F")
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "pinned", durable: true)
            try await channel.confirmSelect()
            for index in 0..<2 { _ = try channel.publish(Self.body(index, padding: 1000), routingKey: "pinned", properties: BasicProperties(deliveryMode: 2)) }
            #expect(try await channel.waitForConfirms() == [])
            let holder = try await connection.openChannel()
            #expect(try await holder.get(queue: "pinned")?.body == Self.body(0, padding: 1000))
            await first.kill()
        }
        let ledger = Ledger()
        var next = 0
        for round in 0..<4 {
            let broker = try await BrokerChild.start(directory: directory, arguments: small)
            let killer = Task {
                try? await Task.sleep(nanoseconds: UInt64(500 + (round * 211) % 700) * 1_000_000)
                await broker.kill()
            }
            await Self.session(port: broker.port, queue: "stream", padding: 1000, next: &next, ledger: ledger, drain: false)
            await killer.value
        }
        let broker = try await BrokerChild.start(directory: directory, arguments: small)
        await Self.session(port: broker.port, queue: "stream", padding: 1000, next: &next, ledger: ledger, drain: true)
        var pinned: [ByteBuffer] = []
        var segmentBytes = Int.max
        do {
            let connection = try await QueueFeatureScenarios.connect("amqp://guest:guest@127.0.0.1:\(broker.port)/%2F")
            let channel = try await connection.openChannel()
            try await channel.confirmSelect()
            // However little the killed rounds got through on a busy machine: 1.5 MB more,
            // so the bound below means something.
            let fetcher = try await connection.openChannel()
            for batch in 0..<30 {
                let sequences = (0..<50).map { next + batch * 50 + $0 }
                for sequence in sequences {
                    _ = try channel.publish(Self.body(sequence, padding: 1000), routingKey: "stream", properties: BasicProperties(deliveryMode: 2))
                }
                #expect(try await channel.waitForConfirms() == [])
                for sequence in sequences {
                    let message = try #require(try await fetcher.get(queue: "stream"))
                    #expect(message.body == Self.body(sequence, padding: 1000))
                    try message.ack()
                }
            }
            for _ in 0..<5 {
                guard let message = try await fetcher.get(queue: "pinned") else { break }
                pinned.append(message.body)
            }
            // Acks and compaction's copies reach the disk with the next writes (bounded wait).
            for _ in 0..<100 {
                _ = try channel.publish("marker", routingKey: "pinned", properties: BasicProperties(deliveryMode: 2))
                #expect(try await channel.waitForConfirms() == [])
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/segments")) ?? []
                segmentBytes = names.reduce(0) { total, name in
                    total + ((try? FileManager.default.attributesOfItem(atPath: directory + "/segments/" + name)[.size] as? Int) ?? 0)
                }
                if segmentBytes < 8 * 64 * 1024 { break }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            try? await connection.close()
        } catch {
            Issue.record("the last incarnation failed: \(error)")
        }
        broker.process.terminate()
        await broker.kill()
        #expect(pinned == [Self.body(0, padding: 1000), Self.body(1, padding: 1000)])
        let report = ledger.report
        #expect(report.confirmed > 100, "too little traffic to mean anything: \(report.confirmed) confirmed")
        #expect(report.missing.isEmpty, "confirmed but never delivered: \(report.missing.prefix(20))")
        #expect(report.violations.isEmpty, "\(report.violations.prefix(10))")
        // Megabytes of 1 KiB messages went through; without compaction the pinned messages
        // would keep every segment.
        #expect(segmentBytes < 8 * 64 * 1024, "\(segmentBytes) bytes of segments left")
    }

    @Test func confirmedMessagesSurviveRepeatedKills() async throws {
        let directory = NSTemporaryDirectory() + "conductor-crash-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = Ledger()
        var next = 0
        let kills = 8
        for round in 0..<kills {
            let broker = try await BrokerChild.start(directory: directory)
            let killer = Task {
                // Between 0.3 and 1.2 s of traffic, then SIGKILL mid-stream.
                try? await Task.sleep(nanoseconds: UInt64(300 + (round * 137) % 900) * 1_000_000)
                await broker.kill()
            }
            await Self.session(port: broker.port, next: &next, ledger: ledger, drain: false)
            await killer.value
        }
        // A last, clean incarnation fetches whatever is left.
        let broker = try await BrokerChild.start(directory: directory)
        await Self.session(port: broker.port, next: &next, ledger: ledger, drain: true)
        broker.process.terminate()
        await broker.kill()
        let report = ledger.report
        #expect(report.confirmed > 100, "too little traffic to mean anything: \(report.confirmed) confirmed")
        #expect(report.missing.isEmpty, "confirmed but never delivered: \(report.missing.prefix(20))")
        #expect(report.violations.isEmpty, "\(report.violations.prefix(10))")
    }
}
