// Schemas: what classes of object an agent exposes and what their properties mean,
// answered to `_query_request` with `_what: "SCHEMA"`.

/// QMF's value types (`_type` of a property).
public enum PropertyType: String, Hashable, Sendable, Codable, CaseIterable {
    case bool = "TYPE_BOOL"
    case int = "TYPE_INT"
    case float = "TYPE_FLOAT"
    case string = "TYPE_STRING"
    case map = "TYPE_MAP"
    case list = "TYPE_LIST"
    case uuid = "TYPE_UUID"
}

extension PropertyType {
    /// The type a value has on the wire; `nil` for null. (A UUID travels as a string.)
    public init?(of value: MeshValue) {
        switch value {
        case .null: return nil
        case .bool: self = .bool
        case .int: self = .int
        case .double: self = .float
        case .string: self = .string
        case .list: self = .list
        case .map: self = .map
        }
    }
}

/// One property of a class. A dotted name (`sshd.port`) is a path into nested maps.
public struct PropertyDescriptor: Hashable, Sendable {
    public var name: String
    public var type: PropertyType
    public var unit: String?
    public var description: String
    /// A statistic changes on its own (free memory, load); a property only when the host
    /// is reconfigured (hostname, os).
    public var isStatistic: Bool

    public init(_ name: String, _ type: PropertyType, unit: String? = nil, statistic: Bool = false, _ description: String) {
        self.name = name
        self.type = type
        self.unit = unit
        self.description = description
        self.isStatistic = statistic
    }
}

/// One method of a class: its arguments and results are typed structs (see Jobs.swift);
/// the descriptor documents them for people browsing the schema.
public struct MethodDescriptor: Hashable, Sendable {
    public var name: String
    public var description: String
    public var arguments: [PropertyDescriptor]

    public init(_ name: String, _ description: String, arguments: [PropertyDescriptor] = []) {
        self.name = name
        self.description = description
        self.arguments = arguments
    }
}

/// A class definition (QMF's SCHEMA_CLASS):
/// `{"_schema_id": {...}, "_values": {name: {"_type", "_unit", "_desc", "_access", "_kind"}},
///   "_methods": {name: {"_desc", "_arguments": {name: {...}}}}}`.
public struct SchemaClass: Hashable, Sendable, Codable {
    public var id: SchemaClassID
    public var properties: [PropertyDescriptor]
    public var methods: [MethodDescriptor]

    public init(id: SchemaClassID, properties: [PropertyDescriptor], methods: [MethodDescriptor] = []) {
        self.id = id
        self.properties = properties
        self.methods = methods
    }

    public func property(named name: String) -> PropertyDescriptor? {
        self.properties.first { $0.name == name }
    }

    enum CodingKeys: String, CodingKey {
        case id = "_schema_id"
        case values = "_values"
        case methods = "_methods"
    }

    struct WireProperty: Codable {
        var _type: PropertyType
        var _unit: String?
        var _desc: String
        var _access: String?
        var _kind: String?
    }

    struct WireMethod: Codable {
        var _desc: String
        var _arguments: [String: WireProperty]?
    }

    private static func wire(_ property: PropertyDescriptor) -> WireProperty {
        WireProperty(_type: property.type, _unit: property.unit, _desc: property.description, _access: "RO", _kind: property.isStatistic ? "statistic" : "property")
    }

    private static func descriptor(_ name: String, _ wire: WireProperty) -> PropertyDescriptor {
        PropertyDescriptor(name, wire._type, unit: wire._unit, statistic: wire._kind == "statistic", wire._desc)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decode(SchemaClassID.self, forKey: .id)
        let values = try container.decodeIfPresent([String: WireProperty].self, forKey: .values) ?? [:]
        self.properties = values.keys.sorted().map { Self.descriptor($0, values[$0]!) }
        let methods = try container.decodeIfPresent([String: WireMethod].self, forKey: .methods) ?? [:]
        self.methods = methods.keys.sorted().map { name in
            let method = methods[name]!
            let arguments = method._arguments ?? [:]
            return MethodDescriptor(name, method._desc, arguments: arguments.keys.sorted().map { Self.descriptor($0, arguments[$0]!) })
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(Dictionary(uniqueKeysWithValues: self.properties.map { ($0.name, Self.wire($0)) }), forKey: .values)
        if !self.methods.isEmpty {
            let methods = self.methods.map { method in
                (method.name, WireMethod(_desc: method.description, _arguments: Dictionary(uniqueKeysWithValues: method.arguments.map { ($0.name, Self.wire($0)) })))
            }
            try container.encode(Dictionary(uniqueKeysWithValues: methods), forKey: .methods)
        }
    }
}

/// The classes and names every conductor agent uses.
public enum MeshSchema {
    public static let package = "org.conductor"
    /// The one `host` object per agent has this `_object_name`.
    public static let hostObjectName = "host"
    public static let hostClassID = SchemaClassID(package: package, className: "host", type: QMF.Content.data)

    /// The `host` class: facts about the machine the agent runs on (issue 3's list).
    public static let host = SchemaClass(
        id: hostClassID,
        properties: [
            PropertyDescriptor("hostname", .string, "short host name (uname nodename up to the first dot)"),
            PropertyDescriptor("fqdn", .string, "fully qualified domain name, else the host name"),
            PropertyDescriptor("uuid", .uuid, "machine id (/etc/machine-id as a UUID, else DMI product_uuid)"),
            PropertyDescriptor("os", .string, "operating system family, lower case: linux"),
            PropertyDescriptor("os_release", .map, "ID, VERSION_ID, PRETTY_NAME, … from /etc/os-release"),
            PropertyDescriptor("os_pretty_name", .string, "PRETTY_NAME (else NAME) from /etc/os-release"),
            PropertyDescriptor("kernel", .string, "kernel release (uname -r)"),
            PropertyDescriptor("arch", .string, "machine architecture (uname -m)"),
            PropertyDescriptor("cpu_count", .int, "online logical CPUs"),
            PropertyDescriptor("cpu_model", .string, "CPU model name from /proc/cpuinfo"),
            PropertyDescriptor("memory_total", .int, unit: "bytes", "MemTotal from /proc/meminfo"),
            PropertyDescriptor("memory_free", .int, unit: "bytes", statistic: true, "MemAvailable (else MemFree) from /proc/meminfo"),
            PropertyDescriptor("swap_total", .int, unit: "bytes", "SwapTotal from /proc/meminfo"),
            PropertyDescriptor("swap_free", .int, unit: "bytes", statistic: true, "SwapFree from /proc/meminfo"),
            PropertyDescriptor("load_average_1", .float, statistic: true, "1-minute load average"),
            PropertyDescriptor("load_average_5", .float, statistic: true, "5-minute load average"),
            PropertyDescriptor("load_average_15", .float, statistic: true, "15-minute load average"),
            PropertyDescriptor("uptime", .int, unit: "seconds", statistic: true, "seconds since boot"),
            PropertyDescriptor("ipaddress", .string, "primary IPv4 address (of the interface with the default route)"),
            PropertyDescriptor(
                "interfaces", .map,
                "network interfaces by name: {\"eth0\": {\"addresses\": [\"10.0.0.5\"], \"mac\": \"..\", \"up\": true, \"mtu\": 1500}}"),
            PropertyDescriptor("sshd.port", .int, "first Port of sshd_config, following Include lines; 22 when absent"),
            PropertyDescriptor("sshd.ports", .list, "every Port of sshd_config outside Match blocks"),
            PropertyDescriptor(
                "custom", .map,
                "custom facts from the facts directory (YAML/JSON files, executables); address one as custom.<name>"),
        ],
        methods: [
            MethodDescriptor(
                MeshMethod.run, "run a command; returns exit_code, stdout, stderr, truncated, timed_out, duration_ms",
                arguments: [
                    PropertyDescriptor("command", .list, "argv list, or a string run by /bin/sh -c"),
                    PropertyDescriptor("timeout_seconds", .float, unit: "seconds", "kill the command after this long"),
                    PropertyDescriptor("env", .map, "extra environment variables"),
                ]),
            MethodDescriptor(
                MeshMethod.applyJob, "run a configuration job's services in order; returns the job result",
                arguments: [
                    PropertyDescriptor("job_id", .string, "unique id; a job delivered twice runs once"),
                    PropertyDescriptor("services", .list, "services to configure, in order"),
                ]),
            MethodDescriptor(MeshMethod.refresh, "collect facts now; returns the host object's values"),
        ]
    )

    /// Every class an agent knows.
    public static let classes = [host]
}
