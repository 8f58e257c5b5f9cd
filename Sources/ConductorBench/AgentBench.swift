import AMQPClient
import Agent
import Broker
import Foundation
import Logging
import Mesh
import MeshClient
import ServiceLifecycle
import Synchronization

/// `conductor bench-agents`: N agents in this process against an embedded broker (or a
/// given one), then fact queries timed from publish to the N-th answer, then optionally
/// timed remote runs. See docs/benchmarks.md; scripts/bench-agent.sh runs it.
public enum AgentBench {
    public struct Settings: Sendable {
        public var agents: Int
        public var queries: Int
        public var broker: String?
        public var runs: Int
        /// Seconds to keep the agents up after the timed part.
        public var hold: Double
        /// Instance ids are `<prefix>-<index>`: several fleets on one bus need their own.
        public var prefix: String
        public var heartbeatInterval: Duration

        public init(agents: Int, queries: Int, broker: String?, runs: Int, hold: Double, prefix: String = "bench", heartbeatInterval: Duration = .seconds(5)) {
            self.agents = agents
            self.queries = queries
            self.broker = broker
            self.runs = runs
            self.hold = hold
            self.prefix = prefix
            self.heartbeatInterval = heartbeatInterval
        }
    }

    /// Runs it; `report` gets each result line.
    public static func run(_ settings: Settings, report: @escaping @Sendable (String) -> Void) async throws {
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let (url, server) = try await benchBus(settings.broker, logger: logger)
        let root = NSTemporaryDirectory() + "conductor-bench-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let broker = try AMQPConnectionConfiguration(url: url)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for index in 0..<settings.agents {
            let configuration = AgentConfiguration(
                broker: broker, instanceID: "\(settings.prefix)-\(index)", stateDirectory: "\(root)/\(index)", factsDirectory: "\(root)/facts.d",
                heartbeatInterval: settings.heartbeatInterval, refreshInterval: .seconds(60), trustedUser: "guest")
            services.append(.init(service: try AgentService(configuration: configuration, logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let console = try await MeshConsole.connect(broker)
        let expected = settings.agents
        let queries = settings.queries
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Ready when every agent answers a locate.
            let readyBy = ContinuousClock.now + .seconds(60)
            while try await console.locate(timeout: .seconds(2), expectedAgents: expected).count < expected {
                guard ContinuousClock.now < readyBy else { throw BenchError("agents did not all come up within 60 s") }
            }
            var times: [Double] = []
            for _ in 0..<queries {
                let started = ContinuousClock.now
                let answers = try await console.query(QueryRequest(what: .object, schemaID: MeshSchema.hostClassID), timeout: .seconds(10), expectedAgents: expected)
                let elapsed = started.duration(to: .now)
                guard answers.objects.count == expected else { throw BenchError("only \(answers.objects.count) of \(expected) agents answered") }
                times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
            }
            times.sort()
            if !times.isEmpty {
                let median = times[times.count / 2]
                let p95 = times[min(times.count - 1, Int(Double(times.count) * 0.95))]
                report(String(format: "%d agents, %d queries: median %.1f ms, p95 %.1f ms, max %.1f ms (publish to %d-th answer)", expected, queries, median, p95, times.last!, expected))
            }
            try await Self.timeRuns(report: report, settings.runs, agents: expected, console: console)
            if settings.hold > 0 {
                report("agents ready on \(broker.redactedURL)")
                try await Task.sleep(for: .milliseconds(Int64(settings.hold * 1000)))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try? await console.close()
        try? await server?.shutdown()
    }

    static func timeRuns(report: (String) -> Void, _ runs: Int, agents: Int, console: MeshConsole) async throws {
        guard runs > 0 else { return }
        func milliseconds(_ duration: Duration) -> Double {
            Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000
        }
        var times: [Double] = []
        var discoveries: [Double] = []
        for _ in 0..<runs {
            let started = ContinuousClock.now
            let discovered = DiscoveryTime()
            let report = try await RemoteRunner(console: console).run(
                RunRequest(command: .argv(["true"])), on: .matching(nil, expect: agents), settings: .init(discoveryTimeout: .seconds(10))
            ) { progress in
                if case .discovered(_, let elapsed) = progress { discovered.set(elapsed) }
            }
            let elapsed = started.duration(to: .now)
            guard report.agents(.succeeded).count == agents else { throw BenchError("run: \(report.summary)") }
            times.append(milliseconds(elapsed))
            discoveries.append(milliseconds(discovered.get()))
        }
        times.sort()
        discoveries.sort()
        report(String(
            format: "%d agents, %d runs of `true`: median %.1f ms, p95 %.1f ms, max %.1f ms (discovery + every result; discovery alone median %.1f ms)",
            agents, runs, times[times.count / 2], times[min(times.count - 1, Int(Double(times.count) * 0.95))], times.last!, discoveries[discoveries.count / 2]))
    }
}

/// Where the runner's progress callback leaves the discovery time.
private final class DiscoveryTime: Sendable {
    private let value = Mutex(Duration.zero)
    func set(_ duration: Duration) { self.value.withLock { $0 = duration } }
    func get() -> Duration { self.value.withLock { $0 } }
}

/// The bus a hidden benchmark runs on: `url` when given, else a broker embedded in this
/// process on a free 127.0.0.1 port (returned, for the caller to shut down).
public func benchBus(_ url: String?, logger: Logger) async throws -> (url: String, server: BrokerServer?) {
    if let url { return (url, nil) }
    let embedded = BrokerServer(configuration: BrokerConfiguration(port: 0), logger: logger)
    return ("amqp://guest:guest@127.0.0.1:\(try await embedded.start())/%2F", embedded)
}

/// A benchmark that could not run as asked (agents that did not come up, missing answers).
public struct BenchError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
