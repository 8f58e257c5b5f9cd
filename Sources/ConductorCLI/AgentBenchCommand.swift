import ArgumentParser
import ConductorBench

/// `conductor bench-agents` (hidden): N agents in this process against an embedded broker
/// (or --broker), then fact queries timed from publish to the N-th answer. See
/// docs/benchmarks.md; scripts/bench-agent.sh runs it together with the idle RSS check.
struct AgentBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-agents",
        abstract: "Benchmark: a fact query answered by many agents.",
        shouldDisplay: false
    )

    @Option(name: .long, help: "Agents to run.")
    var agents: Int = 100

    @Option(name: .long, help: "Timed queries.")
    var queries: Int = 20

    @Option(name: .long, help: "Use this broker instead of an embedded one.")
    var broker: String?

    @Option(name: .long, help: "Timed remote runs (`true` on every agent, discovery included), after the queries.")
    var runs: Int = 0

    @Option(name: .long, help: "Keep the agents up this many seconds after the timed part (for scripts that time the CLI against them).")
    var hold: Double = 0

    @Option(name: .long, help: "Instance ids are PREFIX-N (several fleets on one bus need different ones).")
    var prefix: String = "bench"

    @Option(name: .long, help: "Seconds between each agent's heartbeats.")
    var heartbeatInterval: Double = 5

    func run() async throws {
        do {
            try await AgentBench.run(
                AgentBench.Settings(
                    agents: self.agents, queries: self.queries, broker: self.broker, runs: self.runs, hold: self.hold, prefix: self.prefix,
                    heartbeatInterval: .milliseconds(Int64(self.heartbeatInterval * 1000))),
                report: { say($0) })
        } catch let error as BenchError {
            throw ValidationError(error.message)
        }
    }
}
