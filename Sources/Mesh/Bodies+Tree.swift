// The bodies a fan-out sends and reads once per agent (a host object, a query, a run's
// result), built and read as `MeshValue` trees. Through Codable each costs a JSON round
// trip (JSONEncoder or JSONDecoder plus our parser); at a thousand agents that was most
// of the CPU a `conductor facts` cost (docs/benchmarks.md, "A thousand agents").
//
// The shapes are the Codable conformances' (`Bodies.swift`, `Jobs.swift`), which stay the
// one definition: a reader that meets anything but the usual shape returns nil, and the
// caller decodes through Codable, which also words the error. Tests hold the two to the
// same output (`BodiesTreeTests`).

extension SchemaClassID {
    public var value: MeshValue {
        var map: [String: MeshValue] = ["_package_name": .string(self.package), "_class_name": .string(self.className)]
        if let type { map["_type"] = .string(type) }
        return .map(map)
    }

    public init?(tree: MeshValue) {
        guard case .map(let map) = tree, let package = map["_package_name"]?.stringValue, let className = map["_class_name"]?.stringValue else { return nil }
        var type: String?
        switch map["_type"] {
        case nil, .null?: type = nil
        case .string(let text)?: type = text
        default: return nil
        }
        self.init(package: package, className: className, type: type)
    }
}

extension ObjectID {
    public var value: MeshValue {
        var map: [String: MeshValue] = ["_object_name": .string(self.objectName)]
        if let agentName { map["_agent_name"] = .string(agentName) }
        if let agentEpoch { map["_agent_epoch"] = .int(agentEpoch) }
        return .map(map)
    }

    public init?(tree: MeshValue) {
        guard case .map(let map) = tree, let name = map["_object_name"]?.stringValue else { return nil }
        var agent: String?
        switch map["_agent_name"] {
        case nil, .null?: agent = nil
        case .string(let text)?: agent = text
        default: return nil
        }
        var epoch: Int64?
        switch map["_agent_epoch"] {
        case nil, .null?: epoch = nil
        case .int(let number)?: epoch = number
        default: return nil
        }
        self.init(objectName: name, agentName: agent, agentEpoch: epoch)
    }
}

extension ObjectData {
    public var value: MeshValue {
        var map: [String: MeshValue] = ["_object_id": self.objectID.value, "_schema_id": self.schemaID.value, "_values": .map(self.values)]
        if let updateTimestamp { map["_update_ts"] = .int(updateTimestamp) }
        return .map(map)
    }

    public init?(tree: MeshValue) {
        guard case .map(let map) = tree, let id = map["_object_id"].flatMap(ObjectID.init(tree:)),
            let schema = map["_schema_id"].flatMap(SchemaClassID.init(tree:)), case .map(let values)? = map["_values"]
        else { return nil }
        var timestamp: Int64?
        switch map["_update_ts"] {
        case nil, .null?: timestamp = nil
        case .int(let number)?: timestamp = number
        default: return nil
        }
        self.init(objectID: id, schemaID: schema, values: values, updateTimestamp: timestamp)
    }

    /// A `_query_response` body of objects: from the tree when it has the usual shape,
    /// else through Codable.
    public static func list(_ body: MeshValue) throws(MeshError) -> [ObjectData] {
        if case .list(let items) = body {
            var objects: [ObjectData] = []
            objects.reserveCapacity(items.count)
            for item in items {
                guard let object = ObjectData(tree: item) else { return try body.decode(as: [ObjectData].self) }
                objects.append(object)
            }
            return objects
        }
        return try body.decode(as: [ObjectData].self)
    }
}

extension QueryRequest {
    /// A `_query_request` body: from the tree when it has the usual shape, else through Codable.
    public static func reading(_ body: MeshValue) throws(MeshError) -> QueryRequest {
        if case .map(let map) = body, let what = map["_what"]?.stringValue.flatMap(QueryTarget.init(rawValue:)) {
            var request = QueryRequest(what: what)
            var usual = true
            switch map["_schema_id"] {
            case nil, .null?: break
            case let value?: if let id = SchemaClassID(tree: value) { request.schemaID = id } else { usual = false }
            }
            switch map["_object_id"] {
            case nil, .null?: break
            case let value?: if let id = ObjectID(tree: value) { request.objectID = id } else { usual = false }
            }
            switch map["_where"] {
            case nil, .null?: break
            case let value?: if let predicate = try? Predicate(value: value) { request.predicate = predicate } else { usual = false }
            }
            if usual { return request }
        }
        return try body.decode(as: QueryRequest.self)
    }
}

extension RunResult {
    /// The `_arguments` of a `run` answer.
    public var arguments: [String: MeshValue] {
        var map: [String: MeshValue] = [
            "exit_code": .int(Int64(self.exitCode)), "stdout": .string(self.stdout), "stderr": .string(self.stderr), "truncated": .bool(self.truncated),
            "timed_out": .bool(self.timedOut), "duration_ms": .int(self.durationMilliseconds),
        ]
        if let durationMicroseconds { map["duration_us"] = .int(durationMicroseconds) }
        return map
    }

    /// A `run` answer's `_arguments`: from the tree when it has the usual shape, else
    /// through Codable.
    public static func reading(_ arguments: [String: MeshValue]) throws(MeshError) -> RunResult {
        if case .int(let code)? = arguments["exit_code"], let exitCode = Int(exactly: code), case .string(let stdout)? = arguments["stdout"],
            case .string(let stderr)? = arguments["stderr"], case .bool(let truncated)? = arguments["truncated"],
            case .bool(let timedOut)? = arguments["timed_out"], case .int(let milliseconds)? = arguments["duration_ms"]
        {
            switch arguments["duration_us"] {
            case nil, .null?:
                return RunResult(exitCode: exitCode, stdout: stdout, stderr: stderr, truncated: truncated, timedOut: timedOut, durationMilliseconds: milliseconds)
            case .int(let microseconds)?:
                return RunResult(
                    exitCode: exitCode, stdout: stdout, stderr: stderr, truncated: truncated, timedOut: timedOut, durationMilliseconds: milliseconds,
                    durationMicroseconds: microseconds)
            default:
                break
            }
        }
        return try MeshValue.map(arguments).decode(as: RunResult.self)
    }
}

extension MethodRequest {
    /// A `_method_request` body: from the tree when it has the usual shape (`_method_name`,
    /// `_arguments`, optional `_object_id`), else through Codable.
    public static func reading(_ body: MeshValue) throws(MeshError) -> MethodRequest {
        if case .map(let map) = body, case .string(let name)? = map["_method_name"] {
            var objectID: ObjectID?
            var usual = true
            switch map["_object_id"] {
            case nil, .null?: break
            case let value?: if let id = ObjectID(tree: value) { objectID = id } else { usual = false }
            }
            if usual {
                switch map["_arguments"] {
                case nil, .null?: return MethodRequest(objectID: objectID, methodName: name)
                case .map(let arguments)?: return MethodRequest(objectID: objectID, methodName: name, arguments: arguments)
                default: break
                }
            }
        }
        return try body.decode(as: MethodRequest.self)
    }
}
