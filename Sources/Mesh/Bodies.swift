// Typed message bodies, with QMFv2's map field names (`_values`, `_schema_id`, ...), so
// callers never build JSON by hand. docs/protocol.md shows each as JSON.

/// `_schema_id`: which class of object (or event) a piece of data is.
public struct SchemaClassID: Hashable, Sendable, Codable, CustomStringConvertible {
    public var package: String
    public var className: String
    /// `_data` for objects, `_event` for events (QMF's `_type`); omitted means `_data`.
    public var type: String?

    public init(package: String, className: String, type: String? = nil) {
        self.package = package
        self.className = className
        self.type = type
    }

    public var description: String { "\(self.package):\(self.className)" }

    enum CodingKeys: String, CodingKey {
        case package = "_package_name"
        case className = "_class_name"
        case type = "_type"
    }
}

/// `_object_id`: names one object of one agent. `_agent_epoch` changes when the agent
/// restarts, so an id taken before a restart no longer matches.
public struct ObjectID: Hashable, Sendable, Codable {
    public var objectName: String
    public var agentName: String?
    public var agentEpoch: Int64?

    public init(objectName: String, agentName: String? = nil, agentEpoch: Int64? = nil) {
        self.objectName = objectName
        self.agentName = agentName
        self.agentEpoch = agentEpoch
    }

    enum CodingKeys: String, CodingKey {
        case objectName = "_object_name"
        case agentName = "_agent_name"
        case agentEpoch = "_agent_epoch"
    }
}

/// The body of `_agent_heartbeat_indication` and `_agent_locate_response`: the agent's
/// attributes in `_values`, next to QMF's reserved `_name`, `_vendor`, `_product`,
/// `_instance`, `_epoch`, `_timestamp` (ns since 1970) and `_heartbeat_interval` (s).
public struct AgentInfo: Hashable, Sendable, Codable {
    public var name: AgentName
    public var epoch: Int64
    /// Nanoseconds since 1970-01-01 UTC when the message was sent.
    public var timestamp: Int64
    /// Seconds between heartbeats.
    public var heartbeatInterval: Int64
    /// Everything else the agent says about itself (hostname, os, ...), matched by the
    /// predicate of `_agent_locate_request`. Keys starting with `_` are reserved.
    public var attributes: [String: MeshValue]

    public init(name: AgentName, epoch: Int64, timestamp: Int64, heartbeatInterval: Int64, attributes: [String: MeshValue] = [:]) {
        self.name = name
        self.epoch = epoch
        self.timestamp = timestamp
        self.heartbeatInterval = heartbeatInterval
        self.attributes = attributes
    }

    /// The AMQP expiration to send a heartbeat with: two intervals. A console that reads a
    /// queue late sees no heartbeat older than that.
    public var heartbeatExpiration: Duration { .seconds(2 * max(1, self.heartbeatInterval)) }

    /// A console counts an agent lost after three intervals without a heartbeat.
    public var lostAfter: Duration { .seconds(3 * max(1, self.heartbeatInterval)) }

    /// Attributes and reserved fields in one map: what `_values` holds, and what the
    /// agent-locate predicate is evaluated against.
    public var values: [String: MeshValue] {
        var values = self.attributes
        values["_name"] = .string(self.name.description)
        values["_vendor"] = .string(self.name.vendor)
        values["_product"] = .string(self.name.product)
        values["_instance"] = .string(self.name.instance)
        values["_epoch"] = .int(self.epoch)
        values["_timestamp"] = .int(self.timestamp)
        values["_heartbeat_interval"] = .int(self.heartbeatInterval)
        return values
    }

    enum CodingKeys: String, CodingKey { case values = "_values" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var values = try container.decode([String: MeshValue].self, forKey: .values)
        func take(_ key: String) throws -> MeshValue {
            guard let value = values.removeValue(forKey: key) else {
                throw DecodingError.keyNotFound(AnyKey(key), .init(codingPath: [CodingKeys.values], debugDescription: "\(key) is missing"))
            }
            return value
        }
        func integer(_ key: String) throws -> Int64 {
            guard let value = try take(key).intValue else {
                throw DecodingError.typeMismatch(Int64.self, .init(codingPath: [CodingKeys.values, AnyKey(key)], debugDescription: "\(key) is not an integer"))
            }
            return value
        }
        guard let nameText = try take("_name").stringValue, let name = AgentName(nameText) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.values, AnyKey("_name")], debugDescription: "_name is not an agent name"))
        }
        self.name = name
        self.epoch = try integer("_epoch")
        self.timestamp = try integer("_timestamp")
        self.heartbeatInterval = try integer("_heartbeat_interval")
        for key in ["_vendor", "_product", "_instance"] { values.removeValue(forKey: key) }
        self.attributes = values
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.values, forKey: .values)
    }
}

/// The body of `_agent_locate_request`: agents whose `AgentInfo.values` match answer.
/// No `_where` means every agent.
public struct AgentLocateRequest: Hashable, Sendable, Codable {
    public var predicate: Predicate?

    public init(where predicate: Predicate? = nil) { self.predicate = predicate }

    enum CodingKeys: String, CodingKey { case predicate = "_where" }
}

/// `_what` of a query.
public enum QueryTarget: String, Hashable, Sendable, Codable, CaseIterable {
    /// Matching objects, as `[ObjectData]` (`qmf.content: _data`).
    case object = "OBJECT"
    /// Ids of matching objects, as `[ObjectID]` (`qmf.content: _object_id`).
    case objectID = "OBJECT_ID"
    /// Class definitions, as `[SchemaClass]` (`qmf.content: _schema_class`).
    case schema = "SCHEMA"
    /// Class ids, as `[SchemaClassID]` (`qmf.content: _schema_id`).
    case schemaID = "SCHEMA_ID"

    /// The `qmf.content` header of the response.
    public var responseContent: String {
        switch self {
        case .object: return QMF.Content.data
        case .objectID: return QMF.Content.objectID
        case .schema: return QMF.Content.schemaClass
        case .schemaID: return QMF.Content.schemaID
        }
    }
}

/// The body of `_query_request`. `_schema_id` and `_object_id` narrow what is searched;
/// `_where` is evaluated against each object's `_values`.
public struct QueryRequest: Hashable, Sendable, Codable {
    public var what: QueryTarget
    public var schemaID: SchemaClassID?
    public var objectID: ObjectID?
    public var predicate: Predicate?

    public init(what: QueryTarget, schemaID: SchemaClassID? = nil, objectID: ObjectID? = nil, where predicate: Predicate? = nil) {
        self.what = what
        self.schemaID = schemaID
        self.objectID = objectID
        self.predicate = predicate
    }

    enum CodingKeys: String, CodingKey {
        case what = "_what"
        case schemaID = "_schema_id"
        case objectID = "_object_id"
        case predicate = "_where"
    }
}

/// One object in a `_query_response` (QMF_DATA): the body of the response is a list of these.
public struct ObjectData: Hashable, Sendable, Codable {
    public var objectID: ObjectID
    public var schemaID: SchemaClassID
    public var values: [String: MeshValue]
    /// Nanoseconds since 1970 when the values were last refreshed.
    public var updateTimestamp: Int64?

    public init(objectID: ObjectID, schemaID: SchemaClassID, values: [String: MeshValue], updateTimestamp: Int64? = nil) {
        self.objectID = objectID
        self.schemaID = schemaID
        self.values = values
        self.updateTimestamp = updateTimestamp
    }

    enum CodingKeys: String, CodingKey {
        case objectID = "_object_id"
        case schemaID = "_schema_id"
        case values = "_values"
        case updateTimestamp = "_update_ts"
    }
}

/// The body of `_method_request`. Without `_object_id` the method is the agent's own.
public struct MethodRequest: Hashable, Sendable, Codable {
    public var objectID: ObjectID?
    public var methodName: String
    public var arguments: [String: MeshValue]

    /// Signatures of `run` and `apply_job` travel in headers (`RequestSignature`, Agent).
    public init(objectID: ObjectID? = nil, methodName: String, arguments: [String: MeshValue] = [:]) {
        self.objectID = objectID
        self.methodName = methodName
        self.arguments = arguments
    }

    /// A request whose arguments are a typed value (`RunRequest`, `ConfigurationJob`).
    public init(objectID: ObjectID? = nil, methodName: String, encoding arguments: some Encodable) throws(MeshError) {
        guard case .map(let map) = try MeshValue(encoding: arguments) else {
            throw MeshError(.invalidArguments, "arguments of '\(methodName)' must encode as a map")
        }
        self.init(objectID: objectID, methodName: methodName, arguments: map)
    }

    /// The arguments read as a typed value; the error names the argument that is wrong.
    public func decodeArguments<Arguments: Decodable>(_ type: Arguments.Type = Arguments.self) throws(MeshError) -> Arguments {
        do {
            return try MeshValue.map(self.arguments).decode(as: Arguments.self)
        } catch {
            throw MeshError(.invalidArguments, "invalid arguments for '\(self.methodName)': \(error.message)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case objectID = "_object_id"
        case methodName = "_method_name"
        case arguments = "_arguments"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.objectID = try container.decodeIfPresent(ObjectID.self, forKey: .objectID)
        self.methodName = try container.decode(String.self, forKey: .methodName)
        self.arguments = try container.decodeIfPresent([String: MeshValue].self, forKey: .arguments) ?? [:]
    }
}

/// The body of `_method_response`: the method's output arguments.
public struct MethodResponse: Hashable, Sendable, Codable {
    public var arguments: [String: MeshValue]

    public init(arguments: [String: MeshValue]) { self.arguments = arguments }

    public init(encoding result: some Encodable) throws(MeshError) {
        guard case .map(let map) = try MeshValue(encoding: result) else {
            throw MeshError(.invalidBody, "a method result must encode as a map")
        }
        self.init(arguments: map)
    }

    public func decodeArguments<Result: Decodable>(_ type: Result.Type = Result.self) throws(MeshError) -> Result {
        try MeshValue.map(self.arguments).decode(as: Result.self)
    }

    enum CodingKeys: String, CodingKey { case arguments = "_arguments" }
}

/// `error_code` of an `_exception`. Numbers follow HTTP's meanings, so they read at a glance.
public struct ExceptionCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public init(from decoder: any Decoder) throws { self.rawValue = try decoder.singleValueContainer().decode(Int.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.rawValue)
    }
    public var description: String { String(self.rawValue) }

    /// The request cannot be read: bad body, bad predicate, invalid arguments.
    public static let invalidRequest = ExceptionCode(rawValue: 400)
    /// The sender may not do this (not the conductor's identity, bad or expired signature).
    public static let forbidden = ExceptionCode(rawValue: 403)
    /// Unknown method, object or schema class.
    public static let notFound = ExceptionCode(rawValue: 404)
    /// The request's own deadline passed before it ran.
    public static let timeout = ExceptionCode(rawValue: 408)
    /// The agent failed while handling a valid request.
    public static let internalError = ExceptionCode(rawValue: 500)
    /// The opcode or `_what` is not implemented by this agent.
    public static let notImplemented = ExceptionCode(rawValue: 501)
    /// Not now: the agent cannot take it at the moment (its replay memory of signed `run`
    /// requests is full); the same request may be sent again later.
    public static let unavailable = ExceptionCode(rawValue: 503)
}

/// The body of `_exception`: `{"_values": {"error_code": 404, "error_text": "..."}}`.
public struct ExceptionBody: Hashable, Sendable, Codable, Error, CustomStringConvertible {
    public var code: ExceptionCode
    public var text: String

    public init(code: ExceptionCode, text: String) {
        self.code = code
        self.text = text
    }

    public var description: String { "\(self.code.rawValue): \(self.text)" }

    /// The body as a MeshValue (encoding this cannot fail).
    public var value: MeshValue {
        .map(["_values": .map(["error_code": .int(Int64(self.code.rawValue)), "error_text": .string(self.text)])])
    }

    struct Values: Codable {
        var error_code: ExceptionCode
        var error_text: String
    }

    enum CodingKeys: String, CodingKey { case values = "_values" }

    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self).decode(Values.self, forKey: .values)
        self.init(code: values.error_code, text: values.error_text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Values(error_code: self.code, error_text: self.text), forKey: .values)
    }
}

/// The body of an event `_data_indication` on `agent.ind.event.<package>.<class>`.
public struct EventData: Hashable, Sendable, Codable {
    public var schemaID: SchemaClassID
    public var values: [String: MeshValue]
    /// Nanoseconds since 1970.
    public var timestamp: Int64
    /// Syslog severity, 0 (emergency) to 7 (debug).
    public var severity: Int?

    public init(schemaID: SchemaClassID, values: [String: MeshValue], timestamp: Int64, severity: Int? = nil) {
        self.schemaID = schemaID
        self.values = values
        self.timestamp = timestamp
        self.severity = severity
    }

    enum CodingKeys: String, CodingKey {
        case schemaID = "_schema_id"
        case values = "_values"
        case timestamp = "_timestamp"
        case severity = "_severity"
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { self.stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
