import Foundation
import Mesh

/// The JSON shape of a fact's value.
public enum FactType: String, Sendable, Hashable, Codable, CaseIterable {
    case string, int, double, bool, map, list

    /// The type a value has; `nil` for null.
    public init?(of value: MeshValue) {
        switch value {
        case .null: return nil
        case .bool: self = .bool
        case .int: self = .int
        case .double: self = .double
        case .string: self = .string
        case .list: self = .list
        case .map: self = .map
        }
    }
}

/// How often a fact changes, which decides how often it is collected.
public enum FactKind: String, Sendable, Hashable, Codable {
    /// Rarely changes: hostname, kernel, cpu model. Collected on demand and at start.
    case property
    /// Changes all the time: free memory, load, uptime. Collected on every interval.
    case statistic
}

/// One entry of the queryable schema of the `host` object.
public struct FactDescriptor: Sendable, Hashable, Codable {
    public var name: String
    public var type: FactType
    public var kind: FactKind
    public var summary: String

    public init(_ name: String, _ type: FactType, _ kind: FactKind, _ summary: String) {
        self.name = name
        self.type = type
        self.kind = kind
        self.summary = summary
    }

    /// The same descriptor in the bus's schema vocabulary (QMF `_type`, `_kind`).
    public var propertyDescriptor: PropertyDescriptor {
        let wireType: PropertyType
        switch type {
        case .string: wireType = .string
        case .int: wireType = .int
        case .double: wireType = .float
        case .bool: wireType = .bool
        case .map: wireType = .map
        case .list: wireType = .list
        }
        return PropertyDescriptor(name, wireType, statistic: kind == .statistic, summary)
    }

    /// The descriptor as a bus value: `{name, type, kind, summary}`.
    public var meshValue: MeshValue {
        .map(["name": .string(name), "type": .string(type.rawValue), "kind": .string(kind.rawValue), "summary": .string(summary)])
    }
}

/// Facts with their collection times.
public struct FactSnapshot: Sendable, Hashable {
    /// The `host` object: built-in facts, `custom`, and `custom_errors` when a custom fact failed.
    public var values: [String: MeshValue]
    /// When any value last changed by a collection (statistics or full).
    public var refreshedAt: Date
    /// When properties and custom facts were last collected.
    public var propertiesRefreshedAt: Date
    public var schema: [FactDescriptor]

    public init(values: [String: MeshValue], refreshedAt: Date, propertiesRefreshedAt: Date, schema: [FactDescriptor]) {
        self.values = values
        self.refreshedAt = refreshedAt
        self.propertiesRefreshedAt = propertiesRefreshedAt
        self.schema = schema
    }

    public var value: MeshValue { .map(values) }

    /// A fact by dotted path: `snapshot["sshd.port"]`, `snapshot["custom.role"]`.
    public subscript(path: String) -> MeshValue? { value[path: path] }
}

/// The schema of the built-in `host` facts. Custom facts are described from their values.
public enum HostFactSchema {
    public static let descriptors: [FactDescriptor] = [
        FactDescriptor("hostname", .string, .property, "short host name"),
        FactDescriptor("fqdn", .string, .property, "fully qualified domain name, else the host name"),
        FactDescriptor("uuid", .string, .property, "machine id (/etc/machine-id or DMI product uuid)"),
        FactDescriptor("os", .string, .property, "operating system family, e.g. linux"),
        FactDescriptor("os_release", .map, .property, "ID, VERSION_ID, PRETTY_NAME from os-release"),
        FactDescriptor("os_pretty_name", .string, .property, "PRETTY_NAME from os-release"),
        FactDescriptor("kernel", .string, .property, "kernel release"),
        FactDescriptor("arch", .string, .property, "machine architecture"),
        FactDescriptor("cpu_count", .int, .property, "logical processors"),
        FactDescriptor("cpu_model", .string, .property, "processor model name"),
        FactDescriptor("memory_total", .int, .property, "bytes of RAM"),
        FactDescriptor("memory_free", .int, .statistic, "bytes of RAM available (MemAvailable, else MemFree)"),
        FactDescriptor("swap_total", .int, .property, "bytes of swap"),
        FactDescriptor("swap_free", .int, .statistic, "bytes of swap free"),
        FactDescriptor("load_average_1", .double, .statistic, "1 minute load average"),
        FactDescriptor("load_average_5", .double, .statistic, "5 minute load average"),
        FactDescriptor("load_average_15", .double, .statistic, "15 minute load average"),
        FactDescriptor("uptime", .int, .statistic, "seconds since boot"),
        FactDescriptor("ipaddress", .string, .property, "IPv4 address of the default-route interface"),
        FactDescriptor("interfaces", .map, .property, "name -> {addresses, mac, up, mtu}"),
        FactDescriptor("sshd", .map, .property, "{port, ports} from sshd_config; 22 when absent"),
    ]

    public static let statisticNames: Set<String> = Set(descriptors.filter { $0.kind == .statistic }.map(\.name))

    /// Built-in descriptors plus one per custom fact, typed from its current value.
    public static func describe(custom: [String: MeshValue]) -> [FactDescriptor] {
        descriptors + custom.keys.sorted().compactMap { key in
            FactType(of: custom[key]!).map { FactDescriptor("custom.\(key)", $0, .property, "custom fact") }
        }
    }
}
