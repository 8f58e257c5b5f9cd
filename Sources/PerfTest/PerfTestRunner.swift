import AMQPClient
import AMQPProtocol
import Foundation
import NIOCore
import NIOPosix

/// Everything a perf-test run needs, already validated.
public struct PerfTestOptions: Sendable {
    /// Where and as whom to connect (only address, credentials and vhost are used).
    public var connection: AMQPConnectionConfiguration
    public var queue: String
    public var size: Int
    public var producers: Int
    public var consumers: Int
    public var seconds: Int
    public var prefetch: UInt16
    public var confirmWindow: Int
    public var rate: Int
    public var autoAck: Bool
    /// Durable queue and delivery-mode 2 messages (a broker's disk path).
    public var persistent = false

    public init(
        connection: AMQPConnectionConfiguration, queue: String, size: Int, producers: Int, consumers: Int, seconds: Int, prefetch: UInt16,
        confirmWindow: Int, rate: Int, autoAck: Bool, persistent: Bool = false
    ) {
        self.connection = connection
        self.queue = queue
        self.size = size
        self.producers = producers
        self.consumers = consumers
        self.seconds = seconds
        self.prefetch = prefetch
        self.confirmWindow = confirmWindow
        self.rate = rate
        self.autoAck = autoAck
        self.persistent = persistent
    }
}

/// Latency percentiles in microseconds.
public struct LatencySummary: Codable, Sendable {
    public var samples: Int
    public var min: Double
    public var p50: Double
    public var p75: Double
    public var p95: Double
    public var p99: Double
    public var p999: Double
    public var max: Double

    /// Sorts `nanoseconds` in place and reads the percentiles off it (nearest rank).
    public init?(nanoseconds: inout [UInt64]) {
        guard !nanoseconds.isEmpty else { return nil }
        nanoseconds.sort()
        func at(_ fraction: Double) -> Double {
            let rank = Int((fraction * Double(nanoseconds.count)).rounded(.up)) - 1
            return Double(nanoseconds[Swift.max(0, Swift.min(nanoseconds.count - 1, rank))]) / 1000
        }
        self.samples = nanoseconds.count
        self.min = Double(nanoseconds[0]) / 1000
        self.p50 = at(0.50)
        self.p75 = at(0.75)
        self.p95 = at(0.95)
        self.p99 = at(0.99)
        self.p999 = at(0.999)
        self.max = Double(nanoseconds[nanoseconds.count - 1]) / 1000
    }
}

/// The outcome of a run, as `--json` prints it.
public struct PerfTestReport: Codable, Sendable {
    public var broker: String
    public var queue: String
    public var size: Int
    public var producers: Int
    public var consumers: Int
    public var seconds: Double
    public var published: Int
    public var confirmed: Int
    public var nacked: Int
    public var returned: Int
    public var received: Int
    public var publishRate: Double
    public var confirmRate: Double
    public var receiveRate: Double
    /// Publish-to-delivery latency; absent with bodies under 8 bytes or no consumers.
    public var latencyMicroseconds: LatencySummary?
}

/// Starts the producer and consumer connections, reports once a second, and stops them
/// after the configured time.
public struct PerfTestRunner: Sendable {
    public var options: PerfTestOptions
    /// Called with one line per second of progress.
    public var progress: @Sendable (String) -> Void

    public init(options: PerfTestOptions, progress: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.progress = progress
    }

    public func run() async throws -> PerfTestReport {
        let threads = Swift.max(1, Swift.min(System.coreCount, self.options.producers + self.options.consumers))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            let report = try await self.run(on: group)
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func run(on group: MultiThreadedEventLoopGroup) async throws -> PerfTestReport {
        let clock: @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }

        var channels: [WorkerConnection] = []
        do {
            // Consumers first, so the first messages already find someone to take them.
            for _ in 0..<self.options.consumers {
                let role = PerfRole.consumer(queue: self.options.queue, prefetch: self.options.prefetch, autoAck: self.options.autoAck)
                channels.append(try await self.connect(role: role, group: group, clock: clock))
            }
            for _ in 0..<self.options.producers {
                let role = PerfRole.producer(
                    queue: self.options.queue, size: self.options.size,
                    confirmWindow: self.options.confirmWindow, rate: self.options.rate
                )
                channels.append(try await self.connect(role: role, group: group, clock: clock))
            }
        } catch {
            for connection in channels { try? await connection.channel.close() }
            throw error
        }

        let start = clock()
        var totals = PerfCounters()
        var allLatencies: [UInt64] = []
        var failure: String?
        for second in 1...self.options.seconds {
            let tickDeadline = start + UInt64(second) * 1_000_000_000
            let now = clock()
            if tickDeadline > now { try await Task.sleep(nanoseconds: tickDeadline - now) }
            // Workers' counts are cumulative; their latencies are those since the last drain.
            var cumulative = PerfCounters()
            for connection in channels {
                let (counters, workerFailure) = try await Self.drain(connection.channel, worker: connection.worker)
                Self.accumulate(counters, into: &cumulative)
                if failure == nil { failure = workerFailure }
            }
            let delta = Self.difference(cumulative, totals)
            var latencies = cumulative.latencies
            cumulative.latencies = []
            totals = cumulative
            allLatencies.append(contentsOf: latencies)
            let latency = LatencySummary(nanoseconds: &latencies)
            self.progress(Self.line(second: second, delta: delta, latency: latency, confirms: self.options.confirmWindow > 0))
            if let failure { throw PerfTestError(failure) }
        }
        let elapsed = Double(clock() - start) / 1e9

        for connection in channels where connection.isProducer { Self.stop(connection.channel) }
        for connection in channels where !connection.isProducer { Self.stop(connection.channel) }
        for connection in channels {
            let channel = connection.channel
            // Bounded: a broker that never answers connection.close is cut off.
            let closed = channel.closeFuture
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
            try? await closed.get()
        }

        return PerfTestReport(
            broker: "amqp://\(self.options.connection.host):\(self.options.connection.port)",
            queue: self.options.queue,
            size: self.options.size,
            producers: self.options.producers,
            consumers: self.options.consumers,
            seconds: elapsed,
            published: totals.published,
            confirmed: totals.confirmed,
            nacked: totals.nacked,
            returned: totals.returned,
            received: totals.received,
            publishRate: Double(totals.published) / elapsed,
            confirmRate: Double(totals.confirmed) / elapsed,
            receiveRate: Double(totals.received) / elapsed,
            latencyMicroseconds: LatencySummary(nanoseconds: &allLatencies)
        )
    }

    private struct WorkerConnection {
        var channel: Channel
        var worker: NIOLoopBound<PerfWorker>
        var isProducer: Bool
    }

    private func connect(role: PerfRole, group: MultiThreadedEventLoopGroup, clock: @escaping @Sendable () -> UInt64) async throws -> WorkerConnection {
        let connection = self.options.connection
        let persistent = self.options.persistent
        let loop = group.next()
        let ready = loop.makePromise(of: Void.self)
        let created = loop.makePromise(of: NIOLoopBound<PerfWorker>.self)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let worker = PerfWorker(role: role, connection: connection, ready: ready, clock: clock, persistent: persistent)
                        try channel.pipeline.syncOperations.addHandler(worker)
                        created.succeed(NIOLoopBound(worker, eventLoop: channel.eventLoop))
                    }
                }
                .connect(host: connection.host, port: connection.port)
                .get()
        } catch {
            ready.fail(error)
            created.fail(error)
            throw PerfTestError("cannot connect to \(connection.host):\(connection.port): \(error)")
        }
        let timeout = loop.scheduleTask(in: .seconds(10)) {
            ready.fail(PerfTestError("the broker did not finish the handshake within 10 s"))
        }
        defer { timeout.cancel() }
        do {
            try await ready.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        let isProducer: Bool
        if case .producer = role { isProducer = true } else { isProducer = false }
        return WorkerConnection(channel: channel, worker: try await created.futureResult.get(), isProducer: isProducer)
    }

    /// The worker's counters; a connection that has gone (its handler removed) reports
    /// the failure it recorded as it went.
    private static func drain(_ channel: Channel, worker: NIOLoopBound<PerfWorker>) async throws -> (PerfCounters, String?) {
        try await channel.eventLoop.submit {
            let worker = worker.value
            return (worker.drain(), worker.failure)
        }.get()
    }

    private static func stop(_ channel: Channel) {
        channel.eventLoop.execute {
            guard let worker = try? channel.pipeline.syncOperations.handler(type: PerfWorker.self),
                let context = try? channel.pipeline.syncOperations.context(handlerType: PerfWorker.self)
            else { return }
            worker.stop(context: context)
        }
    }

    private static func accumulate(_ counters: PerfCounters, into total: inout PerfCounters) {
        total.published += counters.published
        total.confirmed += counters.confirmed
        total.nacked += counters.nacked
        total.received += counters.received
        total.returned += counters.returned
        total.latencies.append(contentsOf: counters.latencies)
    }

    private static func difference(_ now: PerfCounters, _ before: PerfCounters) -> PerfCounters {
        var delta = now
        delta.published -= before.published
        delta.confirmed -= before.confirmed
        delta.nacked -= before.nacked
        delta.received -= before.received
        delta.returned -= before.returned
        return delta
    }

    private static func line(second: Int, delta: PerfCounters, latency: LatencySummary?, confirms: Bool) -> String {
        var line = "time \(second)s, sent \(delta.published) msg/s"
        if confirms { line += ", confirmed \(delta.confirmed) msg/s" }
        line += ", received \(delta.received) msg/s"
        if let latency {
            line += String(format: ", latency min/p50/p95/p99 %.0f/%.0f/%.0f/%.0f µs", latency.min, latency.p50, latency.p95, latency.p99)
        }
        return line
    }
}
