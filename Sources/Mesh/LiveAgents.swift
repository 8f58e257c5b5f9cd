// `live_agents`: the coordinator's registry of the agents it hears heartbeats from
// (docs/protocol.md, "live_agents"). A console that knows who is alive can stop
// collecting as soon as all of them answered, and name the ones that went silent,
// instead of waiting out its whole timeout (a silent agent cannot be told from a slow one).
//
// Bodies are read and written as trees, not through Codable: a thousand entries through
// JSONEncoder/Decoder cost milliseconds on every `facts` and `run`.

extension Coordinator.Method {
    /// The agents the coordinator heard from recently: `LiveAgentsRequest` → `LiveAgentList`.
    public static let liveAgents = "live_agents"
}

/// `live_agents` arguments: `where` (optional) is evaluated against each agent's heartbeat
/// values (as `_agent_locate_request`'s); `attributes` false leaves them out of the answer.
public struct LiveAgentsRequest: Hashable, Sendable {
    public var predicate: Predicate?
    public var attributes: Bool

    public init(where predicate: Predicate? = nil, attributes: Bool = true) {
        self.predicate = predicate
        self.attributes = attributes
    }

    public var arguments: [String: MeshValue] {
        var arguments: [String: MeshValue] = ["attributes": .bool(self.attributes)]
        if let predicate { arguments["where"] = predicate.listValue }
        return arguments
    }

    public init(arguments: [String: MeshValue]) throws(MeshError) {
        switch arguments["attributes"] {
        case nil, .null?: self.attributes = true
        case .bool(let value)?: self.attributes = value
        default: throw MeshError(.invalidArguments, "attributes must be true or false")
        }
        switch arguments["where"] {
        case nil, .null?:
            self.predicate = nil
        case let value?:
            do {
                self.predicate = try Predicate(value: value)
            } catch {
                throw MeshError(.invalidArguments, "where: \(error)")
            }
        }
    }
}

/// One agent of the registry, as its last heartbeat described it.
public struct LiveAgent: Hashable, Sendable {
    public var name: AgentName
    public var epoch: Int64
    /// When the coordinator received its last heartbeat (or locate answer), in
    /// milliseconds since 1970 by the coordinator's clock.
    public var lastHeartbeat: Int64
    /// Seconds between its heartbeats, as it announced.
    public var heartbeatInterval: Int64
    /// Its heartbeat attributes (hostname, os, ipaddress, custom, ...); empty when the
    /// request asked for none.
    public var attributes: [String: MeshValue]

    public init(name: AgentName, epoch: Int64, lastHeartbeat: Int64, heartbeatInterval: Int64, attributes: [String: MeshValue] = [:]) {
        self.name = name
        self.epoch = epoch
        self.lastHeartbeat = lastHeartbeat
        self.heartbeatInterval = heartbeatInterval
        self.attributes = attributes
    }

    public var value: MeshValue {
        var map: [String: MeshValue] = [
            "name": .string(self.name.description), "epoch": .int(self.epoch), "last_heartbeat_ms": .int(self.lastHeartbeat),
            "heartbeat_interval": .int(self.heartbeatInterval),
        ]
        if !self.attributes.isEmpty { map["attributes"] = .map(self.attributes) }
        return .map(map)
    }

    public init(value: MeshValue) throws(MeshError) {
        guard case .map(let map) = value else { throw MeshError(.invalidArguments, "a live agent must be an object") }
        guard let text = map["name"]?.stringValue, let name = AgentName(text) else { throw MeshError(.invalidArguments, "a live agent needs a name vendor:product:instance") }
        guard let epoch = map["epoch"]?.intValue, let last = map["last_heartbeat_ms"]?.intValue, let interval = map["heartbeat_interval"]?.intValue else {
            throw MeshError(.invalidArguments, "live agent \(text) needs integer epoch, last_heartbeat_ms and heartbeat_interval")
        }
        self.init(name: name, epoch: epoch, lastHeartbeat: last, heartbeatInterval: interval, attributes: map["attributes"]?.mapValue ?? [:])
    }
}

/// The answer to `live_agents`.
public struct LiveAgentList: Hashable, Sendable {
    /// Agents heard from within three of their heartbeat intervals, sorted by name.
    public var agents: [LiveAgent]
    /// How long the coordinator has been listening to heartbeats, in milliseconds.
    public var listeningMilliseconds: Int64
    /// True once the registry has heard from every agent that was up when it started
    /// listening: its locate sweep is over. Before that an agent may be missing, so a
    /// console must not take the list as everyone.
    public var complete: Bool
    /// Agents whose heartbeats the coordinator does not take (on a bus where each agent has
    /// a login of its own, ones sent under another login: a shared login, or a node
    /// speaking for another). They are not in `agents`; a broadcast still reaches them.
    public var ignored: Int

    public init(agents: [LiveAgent], listeningMilliseconds: Int64, complete: Bool, ignored: Int = 0) {
        self.agents = agents
        self.listeningMilliseconds = listeningMilliseconds
        self.complete = complete
        self.ignored = ignored
    }

    public var arguments: [String: MeshValue] {
        [
            "agents": .list(self.agents.map(\.value)), "listening_ms": .int(self.listeningMilliseconds), "complete": .bool(self.complete),
            "ignored": .int(Int64(self.ignored)),
        ]
    }

    public init(arguments: [String: MeshValue]) throws(MeshError) {
        guard case .list(let list)? = arguments["agents"] else { throw MeshError(.invalidArguments, "live_agents answer without an agents list") }
        var agents: [LiveAgent] = []
        agents.reserveCapacity(list.count)
        for value in list { agents.append(try LiveAgent(value: value)) }
        guard let listening = arguments["listening_ms"]?.intValue, let complete = arguments["complete"]?.boolValue else {
            throw MeshError(.invalidArguments, "live_agents answer needs listening_ms and complete")
        }
        self.init(agents: agents, listeningMilliseconds: listening, complete: complete, ignored: Int(arguments["ignored"]?.intValue ?? 0))
    }
}

extension AgentInfo {
    /// Reads a heartbeat or locate answer body straight from the tree (what the Codable
    /// conformance reads, without its JSON round trip: the registry reads one per agent
    /// per heartbeat interval).
    public init(body: MeshValue) throws(MeshError) {
        guard case .map(let body) = body, case .map(var values)? = body["_values"] else {
            throw MeshError(.invalidBody, "agent info needs a _values object")
        }
        guard let text = values.removeValue(forKey: "_name")?.stringValue, let name = AgentName(text) else {
            throw MeshError(.invalidBody, "agent info: _name is not an agent name vendor:product:instance")
        }
        guard let epoch = values.removeValue(forKey: "_epoch")?.intValue, let timestamp = values.removeValue(forKey: "_timestamp")?.intValue,
            let interval = values.removeValue(forKey: "_heartbeat_interval")?.intValue
        else {
            throw MeshError(.invalidBody, "agent info of \(text): _epoch, _timestamp and _heartbeat_interval must be integers")
        }
        for key in ["_vendor", "_product", "_instance"] { values.removeValue(forKey: key) }
        self.init(name: name, epoch: epoch, timestamp: timestamp, heartbeatInterval: interval, attributes: values)
    }
}
