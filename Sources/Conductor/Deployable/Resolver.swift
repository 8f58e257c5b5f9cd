import Mesh

/// What the coordinator knows so far: facts by member, services that ran, secrets generated.
public struct KnownValues: Hashable, Sendable {
    /// Each member's facts as the agent reports them (the `host` object's values).
    public var facts: [MemberID: MeshValue]
    public var completed: Set<Requirement>
    public var secrets: [SecretID: String]

    public init(facts: [MemberID: MeshValue] = [:], completed: [(MemberID, String)] = [], secrets: [SecretID: String] = [:]) {
        self.facts = facts
        self.completed = Set(completed.map { Requirement.completion($0.0, service: $0.1) })
        self.secrets = secrets
    }

    public mutating func markCompleted(_ member: MemberID, service: String) {
        self.completed.insert(.completion(member, service: service))
    }

    func isSatisfied(_ requirement: Requirement) -> Bool {
        switch requirement {
        case .fact(let member, let path): self.facts[member]?[path: path] != nil
        case .completion: self.completed.contains(requirement)
        case .secret(let id): self.secrets[id] != nil
        }
    }
}

/// A member whose every parameter is known: its job can be sent.
public struct ResolvedService: Hashable, Sendable {
    public var name: String
    public var kind: ScriptKind
    public var script: String
    public var parameters: [String: MeshValue]
    /// Names whose value carries a secret: masked when printed.
    public var secretParameters: Set<String>

    public var spec: ServiceSpec { ServiceSpec(name: self.name, script: self.script, kind: self.kind, parameters: self.parameters) }

    /// For tables and logs: secrets as `********`.
    public var maskedParameters: [String: String] {
        var masked: [String: String] = [:]
        for (name, value) in self.parameters {
            if self.secretParameters.contains(name) {
                masked[name] = "********"
            } else if case .string(let text) = value {
                masked[name] = text
            } else {
                masked[name] = value.json
            }
        }
        return masked
    }
}

public enum MemberResolution: Hashable, Sendable {
    case ready([ResolvedService])
    /// What is still missing, sorted, each naming its source member.
    case waiting([Requirement])

    public var isReady: Bool { if case .ready = self { true } else { false } }
}

extension ResolutionPlan {
    /// Resolves what the known values allow. Pure: the runtime calls it again as facts and
    /// results arrive; `conductor status` prints the `.waiting` lists.
    public func resolve(with known: KnownValues) -> [MemberID: MemberResolution] {
        var result: [MemberID: MemberResolution] = [:]
        for member in self.members { result[member.member] = Self.resolve(member, with: known) }
        return result
    }

    static func resolve(_ member: MemberPlan, with known: KnownValues) -> MemberResolution {
        let missing = member.requirements.filter { !known.isSatisfied($0) }
        guard missing.isEmpty else { return .waiting(missing.sorted()) }
        let services = member.services.map { service in
            var parameters: [String: MeshValue] = [:]
            var secret: Set<String> = []
            for parameter in service.parameters {
                parameters[parameter.name] = Self.value(parameter.value, known)
                if parameter.isSecret { secret.insert(parameter.name) }
            }
            return ResolvedService(name: service.name, kind: service.kind, script: service.script, parameters: parameters, secretParameters: secret)
        }
        return .ready(services)
    }

    private static func value(_ planned: PlannedValue, _ known: KnownValues) -> MeshValue {
        switch planned {
        case .literal(let value): return value
        case .fact(let member, let path): return known.facts[member]?[path: path] ?? .null
        case .secret(let id): return .string(known.secrets[id] ?? "")
        case .concatenation(let parts):
            return .string(parts.map { part in
                let value = Self.value(part, known)
                if case .string(let text) = value { return text }
                return value.json
            }.joined())
        case .list(let items): return .list(items.map { Self.value($0, known) })
        case .map(let map): return .map(map.mapValues { Self.value($0, known) })
        }
    }

    /// One fresh value per secret the plan needs; the state store keeps them so a
    /// re-run or `conductor fwd` reuses them.
    public func generateSecrets() -> [SecretID: String] {
        self.secrets.mapValues { $0.generate() }
    }
}
