import Mesh

/// Something a member's configuration waits for.
public enum Requirement: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// A fact of another member (or its own), by dotted path: `ipaddress`, `custom.role`.
    case fact(MemberID, String)
    /// A service of a member has run successfully.
    case completion(MemberID, service: String)
    /// A generated secret, which the state store keeps per deployment.
    case secret(SecretID)

    public var description: String {
        switch self {
        case .fact(let member, let path): "fact \(path) of \(member)"
        case .completion(let member, let service): "\(member).\(service) to complete"
        case .secret(let id): "secret \(id)"
        }
    }

    /// The member it comes from, if any (Audrey's "source instance").
    public var source: MemberID? {
        switch self {
        case .fact(let member, _), .completion(let member, _): member
        case .secret: nil
        }
    }

    private var sortKey: (Int, String) {
        switch self {
        case .fact(let member, let path): (0, "\(member).\(path)")
        case .completion(let member, let service): (1, "\(member).\(service)")
        case .secret(let id): (2, id.rawValue)
        }
    }

    public static func < (lhs: Requirement, rhs: Requirement) -> Bool { lhs.sortKey < rhs.sortKey }
}

/// A parameter value with every reference expanded to what it finally needs.
public indirect enum PlannedValue: Hashable, Sendable {
    case literal(MeshValue)
    case fact(MemberID, String)
    case secret(SecretID)
    /// Pieces joined as strings (`http://${db.ipaddress}:${db.mysql.port}`).
    case concatenation([PlannedValue])
    case list([PlannedValue])
    case map([String: PlannedValue])

    public var requirements: Set<Requirement> {
        switch self {
        case .literal: []
        case .fact(let member, let path): [.fact(member, path)]
        case .secret(let id): [.secret(id)]
        case .concatenation(let items), .list(let items): items.reduce(into: []) { $0.formUnion($1.requirements) }
        case .map(let map): map.values.reduce(into: []) { $0.formUnion($1.requirements) }
        }
    }

    public var containsSecret: Bool { self.requirements.contains { if case .secret = $0 { true } else { false } } }
}

public struct PlannedParameter: Hashable, Sendable {
    public var name: String
    public var value: PlannedValue
    public var isSecret: Bool { self.value.containsSecret }
}

public struct PlannedService: Hashable, Sendable {
    public var name: String
    public var kind: ScriptKind
    public var script: String
    public var parameters: [PlannedParameter]
    /// `after:` completions.
    public var after: Set<Requirement>
}

/// One member's configuration job, with what it waits for.
public struct MemberPlan: Hashable, Sendable {
    public var member: MemberID
    public var provider: String
    public var services: [PlannedService]

    /// Everything that must be known before the job can be sent.
    public var requirements: Set<Requirement> {
        self.services.reduce(into: Set<Requirement>()) { result, service in
            result.formUnion(service.after)
            for parameter in service.parameters { result.formUnion(parameter.value.requirements) }
        }
    }
}

/// A dependency between instances, from a reference or an `after`.
public struct DependencyEdge: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Needs a host fact: available once the source member's agent is up, so it does not order configuration.
        case fact(String)
        /// Needs a fact the source publishes only after one of its services ran.
        case publishedFact(String, service: String)
        /// `after: source.service`.
        case after(service: String)
    }

    /// The instance that waits.
    public var from: String
    /// The instance it waits for.
    public var to: String
    public var kind: Kind
    /// `web.app.db_host`, or `web.app` for `after`.
    public var via: String
    public var location: FileLocation?

    /// Whether the source must finish configuring first (facts from boot do not order anything).
    public var ordersConfiguration: Bool {
        if case .fact = self.kind { return false }
        return true
    }

    public var explanation: String {
        switch self.kind {
        case .fact(let path): "\(self.via) uses \(self.to)'s fact \(path)"
        case .publishedFact(let path, let service): "\(self.via) uses \(self.to)'s fact \(path), published after \(self.to).\(service) runs"
        case .after(let service): "\(self.via) runs after \(self.to).\(service)"
        }
    }
}

public struct DependencyGraph: Hashable, Sendable {
    public var instances: [String]
    public var edges: [DependencyEdge]

    /// The first cycle among ordering edges, as its edges in order (`web -> db -> web`).
    public func findCycle() -> [DependencyEdge]? {
        let ordering = self.edges.filter(\.ordersConfiguration)
        var outgoing: [String: [DependencyEdge]] = [:]
        for edge in ordering { outgoing[edge.from, default: []].append(edge) }
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [DependencyEdge] = []

        func visit(_ node: String) -> [DependencyEdge]? {
            marks[node] = .visiting
            for edge in outgoing[node] ?? [] {
                switch marks[edge.to] {
                case .visiting:
                    stack.append(edge)
                    let start = stack.firstIndex { $0.from == edge.to }!
                    return Array(stack[start...])
                case .done:
                    continue
                case nil:
                    stack.append(edge)
                    if let cycle = visit(edge.to) { return cycle }
                    stack.removeLast()
                }
            }
            marks[node] = .done
            return nil
        }
        for node in self.instances where marks[node] == nil {
            if let cycle = visit(node) { return cycle }
        }
        return nil
    }

    /// Instances in configuration order (sources first), ties in file order; nil on a cycle.
    public func topologicalOrder() -> [String]? {
        let ordering = self.edges.filter(\.ordersConfiguration)
        var waitingOn: [String: Set<String>] = [:]
        for node in self.instances { waitingOn[node] = [] }
        for edge in ordering { waitingOn[edge.from, default: []].insert(edge.to) }
        var order: [String] = []
        var remaining = self.instances
        while !remaining.isEmpty {
            guard let next = remaining.firstIndex(where: { waitingOn[$0]!.isSubset(of: Set(order)) }) else { return nil }
            order.append(remaining.remove(at: next))
        }
        return order
    }
}

/// Everything the resolver runtime needs: per member, its job with references expanded
/// to (source member, fact) or completion, and the secrets to generate.
public struct ResolutionPlan: Hashable, Sendable {
    public var deployment: String
    public var environment: String?
    /// Members in configuration order.
    public var members: [MemberPlan]
    public var secrets: [SecretID: SecretSpec]
    public var graph: DependencyGraph
    /// Instances in configuration order.
    public var order: [String]
    /// The providers the deployable defines (`providers:`), by name.
    public var providers: [ProviderDefinition] = []

    public func member(_ id: MemberID) -> MemberPlan? { self.members.first { $0.member == id } }
    public func provider(_ name: String) -> ProviderDefinition? { self.providers.first { $0.name == name } }

    /// The members a provider places, in plan order (its pool's placement order).
    public func members(onProvider name: String) -> [MemberID] { self.members.filter { $0.provider == name }.map(\.member) }
}
