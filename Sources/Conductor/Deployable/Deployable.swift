import Mesh

/// The layers of the parameter hierarchy, lowest first (Neckbeard's order, plus the
/// deployable's own instance definition and the command line).
public enum Layer: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    /// Built in (count 1, provider `local`).
    case builtin
    /// The deployable's top-level `parameters`, inherited by every service.
    case defaults
    /// `types.<name>` selected by an instance's `type:`.
    case type
    /// The instance (and its services) as the deployable defines it.
    case instance
    /// `environments/<name>.yml`, whatever part of it.
    case environment
    /// `zones.<name>` selected by an instance's `zone:`.
    case zone
    /// `--set NAME=VALUE`.
    case commandLine = "command-line"

    public static func < (lhs: Layer, rhs: Layer) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }
}

/// Where a final value came from.
public struct Origin: Hashable, Sendable, CustomStringConvertible {
    public var layer: Layer
    public var location: FileLocation?

    public init(layer: Layer, location: FileLocation?) {
        self.layer = layer
        self.location = location
    }

    public var description: String {
        if let location { return "\(location) (\(self.layer.rawValue))" }
        return self.layer.rawValue
    }
}

/// A setting after the hierarchy is applied: the winning value and what it hid.
public struct Resolved<Value: Hashable & Sendable>: Hashable, Sendable {
    public var value: Value
    public var origin: Origin
    /// Lower layers that also set it, highest first.
    public var overridden: [Origin]
}

public struct Parameter: Hashable, Sendable {
    public var name: String
    public var value: Resolved<ValueTemplate>
    /// How it is named as a secret when it is one: by the place it was declared.
    public var secretID: SecretID?
}

public struct Service: Hashable, Sendable {
    public enum Source: Hashable, Sendable {
        case inline(String)
        /// Relative to the deployable's directory; read when the plan is made.
        case file(String)
    }

    public var name: String
    public var kind: ScriptKind
    public var source: Source
    public var sourceLocation: FileLocation?
    public var after: [Located<String>]
    public var parameters: [Parameter]
    public var location: FileLocation

    public func parameter(_ name: String) -> Parameter? { self.parameters.first { $0.name == name } }
}

public struct Instance: Hashable, Sendable {
    public var name: String
    public var count: Resolved<Int>
    public var provider: Resolved<String>
    public var type: String?
    public var zone: String?
    public var services: [Service]
    public var publishes: [PublishedFact]
    public var location: FileLocation

    public func service(_ name: String) -> Service? { self.services.first { $0.name == name } }

    public var members: [MemberID] {
        if self.count.value == 1 { return [MemberID(instance: self.name, index: nil)] }
        return (0..<self.count.value).map { MemberID(instance: self.name, index: $0) }
    }
}

/// The deployable after the environment and `--set` values are applied: what a launch runs.
public struct Deployable: Hashable, Sendable {
    public var name: String
    public var file: String
    /// Service `file:` paths are relative to it.
    public var directory: String
    public var environment: String?
    /// The top-level parameters (the deployable's inputs).
    public var parameters: [Parameter]
    public var instances: [Instance]
    /// `providers:`, after the environment's overrides.
    public var providers: [ProviderDefinition] = []

    public func instance(_ name: String) -> Instance? { self.instances.first { $0.name == name } }
}

/// One member of an instance: `db` when the instance has one, `web[0]`, `web[1]`… otherwise.
public struct MemberID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var instance: String
    public var index: Int?

    public init(instance: String, index: Int?) {
        self.instance = instance
        self.index = index
    }

    public var description: String { self.index.map { "\(self.instance)[\($0)]" } ?? self.instance }

    public static func < (lhs: MemberID, rhs: MemberID) -> Bool {
        (lhs.instance, lhs.index ?? -1) < (rhs.instance, rhs.index ?? -1)
    }
}

/// One line of `conductor validate --explain`.
public struct ExplainEntry: Hashable, Sendable {
    /// `web.count`, `web.app.db_host`, `parameters.admin_email`.
    public var path: String
    /// Printable, secrets masked.
    public var value: String
    public var origin: Origin
    public var overridden: [Origin]
}

extension Deployable {
    /// For each final value, where it came from and what it overrode.
    public func explain() -> [ExplainEntry] {
        var entries: [ExplainEntry] = []
        for parameter in self.parameters {
            entries.append(ExplainEntry(
                path: "parameters.\(parameter.name)", value: parameter.value.value.description,
                origin: parameter.value.origin, overridden: parameter.value.overridden))
        }
        for instance in self.instances {
            entries.append(ExplainEntry(
                path: "\(instance.name).count", value: String(instance.count.value),
                origin: instance.count.origin, overridden: instance.count.overridden))
            entries.append(ExplainEntry(
                path: "\(instance.name).provider", value: instance.provider.value,
                origin: instance.provider.origin, overridden: instance.provider.overridden))
            for service in instance.services {
                for parameter in service.parameters {
                    entries.append(ExplainEntry(
                        path: "\(instance.name).\(service.name).\(parameter.name)", value: parameter.value.value.description,
                        origin: parameter.value.origin, overridden: parameter.value.overridden))
                }
            }
        }
        return entries
    }
}
