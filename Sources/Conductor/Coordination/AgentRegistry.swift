import Mesh
import Synchronization

/// Who is alive, from heartbeats: the coordinator's registry behind `live_agents`
/// (docs/protocol.md). No I/O and no clock inside: the service feeds it what it consumed
/// and the time, in milliseconds since 1970.
///
/// An agent is live while its last heartbeat is younger than three of its own intervals
/// (`AgentInfo.lostAfter`, as every console counts it); older ones are forgotten. A
/// registry that just started has heard from nobody yet, so it asks every agent once
/// (`_agent_locate_request`) and calls itself complete only after `sweep` has passed:
/// before that a console must not take its list as everyone.
struct AgentRegistry: Sendable {
    /// What a heartbeat did to the registry (for logs and tests).
    enum Heard: Hashable, Sendable {
        case new
        case refreshed
        /// A higher epoch than the one known: the agent restarted.
        case restarted
        /// Older than what is known (a lower epoch, a heartbeat that waited in a queue): ignored.
        case stale
    }

    private var agents: [AgentName: LiveAgent] = [:]
    /// Heartbeats refused (not sent under the named agent's own login): when each was last
    /// seen, and its interval, so they are counted while they last (`LiveAgentList.ignored`).
    private var refused: [AgentName: (last: Int64, interval: Int64)] = [:]
    private(set) var listeningSince: Int64?
    private var completeAt: Int64?
    let sweep: Int64

    init(sweepMilliseconds: Int64 = 2_000) {
        self.sweep = sweepMilliseconds
    }

    /// The heartbeat consumer is in place and the locate sweep was sent.
    mutating func listening(at now: Int64) {
        self.listeningSince = now
        self.completeAt = now + self.sweep
    }

    /// The consumer ended (the bus is gone): until it listens again nothing is complete.
    mutating func deaf() {
        self.listeningSince = nil
        self.completeAt = nil
    }

    @discardableResult
    mutating func heard(_ info: AgentInfo, at now: Int64) -> Heard {
        let entry = LiveAgent(name: info.name, epoch: info.epoch, lastHeartbeat: now, heartbeatInterval: info.heartbeatInterval, attributes: info.attributes)
        guard let known = self.agents[info.name], self.isLive(known, now: now) else {
            self.agents[info.name] = entry
            return .new
        }
        if info.epoch < known.epoch { return .stale }
        self.agents[info.name] = entry
        return info.epoch > known.epoch ? .restarted : .refreshed
    }

    /// A heartbeat that does not count (on a bus of per-agent logins, one sent under
    /// another login than the agent's). True the first time this agent is refused (to log
    /// it once, not at every heartbeat).
    mutating func refused(_ info: AgentInfo, at now: Int64) -> Bool {
        let known = self.refused[info.name]
        self.refused[info.name] = (now, info.heartbeatInterval)
        return known.map { now - $0.last >= Self.lostAfter($0.interval) } ?? true
    }

    /// The live agents matching `request`, sorted by name; forgets the lost ones.
    mutating func list(_ request: LiveAgentsRequest, now: Int64) -> LiveAgentList {
        self.agents = self.agents.filter { self.isLive($0.value, now: now) }
        self.refused = self.refused.filter { now - $0.value.last < Self.lostAfter($0.value.interval) }
        var live = self.agents.values.filter { agent in
            guard let predicate = request.predicate else { return true }
            return predicate.matches(.map(AgentInfo(name: agent.name, epoch: agent.epoch, timestamp: 0, heartbeatInterval: agent.heartbeatInterval, attributes: agent.attributes).values))
        }
        live.sort { $0.name.description < $1.name.description }
        if !request.attributes {
            for index in live.indices { live[index].attributes = [:] }
        }
        return LiveAgentList(
            agents: live, listeningMilliseconds: self.listeningSince.map { max(0, now - $0) } ?? 0,
            complete: self.completeAt.map { now >= $0 } ?? false, ignored: self.refused.count)
    }

    var count: Int { self.agents.count }

    private func isLive(_ agent: LiveAgent, now: Int64) -> Bool {
        now - agent.lastHeartbeat < Self.lostAfter(agent.heartbeatInterval)
    }

    /// Three intervals (in seconds) without a heartbeat, in milliseconds.
    private static func lostAfter(_ interval: Int64) -> Int64 { 3 * 1000 * max(1, interval) }
}

/// The registry shared by the heartbeat consumer and the `live_agents` handler.
final class SharedAgentRegistry: Sendable {
    private let state: Mutex<AgentRegistry>

    init(_ registry: AgentRegistry) { self.state = Mutex(registry) }

    func withLock<Result>(_ body: (inout AgentRegistry) -> Result) -> Result {
        self.state.withLock { body(&$0) }
    }
}
