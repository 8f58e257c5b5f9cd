import AMQPClient
import Foundation
import Mesh
import MeshClient

/// `provider: agents`: places members on agents that already run on the bus (machines a
/// user set up, the compose file's agent containers) instead of starting new ones.
///
/// A member of instance `web` goes to the agents whose custom fact `role` is `web`
/// (`echo role=web > <facts-dir>/role.txt`), sorted by agent name: `web[i]` takes the i-th,
/// a member without index the first. The placement is a pure function of what answers, so
/// asking again (a roll-forward) picks the same agent. The agents must trust the
/// coordinator's user (`conductor agent --trusted-user`). Stopping such an instance leaves
/// the agent running: it is not ours to stop.
public struct AgentsProvider: InstanceProvider {
    public let name = "agents"
    /// Its agents are already running, each with its own login (`conductor agent enroll`).
    public let startsAgents = false
    /// The bus the agents are on (the coordinator's own login).
    public var console: AMQPConnectionConfiguration
    /// The custom fact that names an agent's role.
    public var roleFact: String
    /// How long agents get to answer the locate request.
    public var locateTimeout: Duration
    /// One locate serves the members started within a few seconds of each other (a launch
    /// starts them one after another), instead of one locate timeout per member.
    private let recent = RecentAgents()

    public init(console: AMQPConnectionConfiguration, roleFact: String = "role", locateTimeout: Duration = .seconds(2)) {
        self.console = console
        self.roleFact = roleFact
        self.locateTimeout = locateTimeout
    }

    /// `web[1]` -> ("web", 1); `db` -> ("db", 0).
    static func placement(of member: String) -> (role: String, index: Int) {
        guard let open = member.firstIndex(of: "["), member.hasSuffix("]"),
            let index = Int(member[member.index(after: open)..<member.index(before: member.endIndex)])
        else { return (member, 0) }
        return (String(member[..<open]), index)
    }

    public func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        let (role, index) = Self.placement(of: request.member)
        let found: [AgentInfo]
        if let cached = self.recent.agents(maximumAge: .seconds(5)) {
            found = cached
        } else {
            do {
                let console = try await MeshConsole.connect(self.console)
                found = try await console.locate(where: .exists("custom.\(self.roleFact)"), timeout: self.locateTimeout)
                try? await console.close()
            } catch {
                throw ProviderError(provider: self.name, "cannot ask the bus for agents with a custom fact \(self.roleFact): \(error)")
            }
            self.recent.remember(found)
        }
        let agents = Dictionary(
            found.filter { MeshValue.map($0.attributes)[path: "custom.\(self.roleFact)"]?.stringValue == role }.map { ($0.name.description, $0) },
            uniquingKeysWith: { first, _ in first }
        ).values.sorted { $0.name.description < $1.name.description }
        guard index < agents.count else {
            throw ProviderError(
                provider: self.name,
                "\(request.member) needs agent \(index + 1) with custom fact \(self.roleFact)=\(role), but \(agents.count) answered within \(self.locateTimeout)")
        }
        let agent = agents[index]
        return InstanceHandle(
            instanceID: request.instanceID, value: agent.name.description, address: agent.attributes["ipaddress"]?.stringValue,
            agent: agent.name.description)
    }

    /// Nothing to stop: the agent was running before and keeps running.
    public func stop(_ handle: InstanceHandle) async throws {}

    public func isAlive(_ handle: InstanceHandle) async -> Bool {
        guard let name = handle.agent.flatMap(AgentName.init), let console = try? await MeshConsole.connect(self.console) else { return false }
        let reply = try? await console.call(MethodRequest(methodName: MeshMethod.refresh), on: name, timeout: self.locateTimeout)
        try? await console.close()
        return reply?.opcode == .methodResponse
    }

    /// Placement is recomputed by `start`, which picks the same agent again.
    public func locate(instanceID: String) async -> InstanceHandle? { nil }
}

/// The agents the last locate found, and when.
private final class RecentAgents: @unchecked Sendable {
    private let lock = NSLock()
    private var found: [AgentInfo] = []
    private var at: ContinuousClock.Instant?

    func agents(maximumAge: Duration) -> [AgentInfo]? {
        self.lock.withLock {
            guard let at = self.at, at.duration(to: .now) < maximumAge else { return nil }
            return self.found
        }
    }

    func remember(_ agents: [AgentInfo]) {
        self.lock.withLock {
            self.found = agents
            self.at = .now
        }
    }
}
