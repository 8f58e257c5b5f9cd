/// QMFv2 conventions carried over AMQP 0-9-1: exchange names, header keys, routing keys.
/// docs/protocol.md is the prose version of this file.
public enum QMF {
    /// Topic exchange: heartbeats, events, and requests broadcast by consoles.
    public static let topicExchange = "qmf.default.topic"
    /// Direct exchange: requests addressed to one agent (routing key = agent name) and
    /// job inboxes (routing key = inbox queue name).
    public static let directExchange = "qmf.default.direct"
    /// The `app_id` property of every QMFv2 message.
    public static let appID = "qmf2"
    public static let contentType = "application/json"

    /// Application header keys.
    public enum Header {
        public static let opcode = "qmf.opcode"
        public static let agent = "qmf.agent"
        public static let content = "qmf.content"
        public static let method = "method"
        public static let partial = "partial"
    }

    /// Values of the `qmf.content` header: what kind of data a response or indication holds.
    public enum Content {
        public static let data = "_data"
        public static let schemaID = "_schema_id"
        public static let schemaClass = "_schema_class"
        public static let objectID = "_object_id"
        public static let event = "_event"
    }

    /// Routing keys on `qmf.default.topic`.
    public enum Subject {
        /// `agent.ind.heartbeat.<vendor>.<product>`
        public static func heartbeat(vendor: String, product: String) -> String {
            "agent.ind.heartbeat.\(vendor).\(product)"
        }
        /// Binding pattern for every agent's heartbeats.
        public static let allHeartbeats = "agent.ind.heartbeat.#"
        /// `agent.ind.event.<package>.<class>`
        public static func event(package: String, class className: String) -> String {
            "agent.ind.event.\(package).\(className)"
        }
        /// Agents answer with `_agent_locate_response` when their attributes match.
        public static let agentLocate = "console.request.agent_locate"
        /// Our extension: a `_query_request` to every agent at once; each answers with the
        /// objects that match (or nothing when none does).
        public static let query = "console.request.query"
    }
}

/// The `qmf.opcode` header: what the message is.
public enum Opcode: String, Hashable, Sendable, CaseIterable, Codable {
    case agentHeartbeatIndication = "_agent_heartbeat_indication"
    case agentLocateRequest = "_agent_locate_request"
    case agentLocateResponse = "_agent_locate_response"
    case queryRequest = "_query_request"
    case queryResponse = "_query_response"
    case methodRequest = "_method_request"
    case methodResponse = "_method_response"
    case dataIndication = "_data_indication"
    case exception = "_exception"

    /// The `method` header this opcode is sent with.
    public var messageMethod: MessageMethod {
        switch self {
        case .agentLocateRequest, .queryRequest, .methodRequest: return .request
        case .agentLocateResponse, .queryResponse, .methodResponse, .exception: return .response
        case .agentHeartbeatIndication, .dataIndication: return .indication
        }
    }
}

/// The `method` header: the message's role in its exchange pattern.
public enum MessageMethod: String, Hashable, Sendable, CaseIterable, Codable {
    case request, response, indication
}

/// An agent's name, `vendor:product:instance` (`conductor:agent:web-1`). Vendor and product
/// become words of heartbeat routing keys, so they hold no dots; the instance names the
/// agent's job inbox queue, so it is bounded and free of `:` and wildcards.
public struct AgentName: Hashable, Sendable, Codable, CustomStringConvertible, LosslessStringConvertible {
    public static let conductorVendor = "conductor"
    public static let agentProduct = "agent"
    public static let maximumInstanceLength = 128

    public let vendor: String
    public let product: String
    public let instance: String

    /// Validates each part; the error says which part is wrong and why.
    public init(vendor: String = AgentName.conductorVendor, product: String = AgentName.agentProduct, instance: String) throws(MeshError) {
        try Self.validateWord(vendor, part: "vendor")
        try Self.validateWord(product, part: "product")
        guard !instance.isEmpty else {
            throw MeshError(.invalidAgentName, "agent instance is empty")
        }
        guard instance.utf8.count <= Self.maximumInstanceLength else {
            throw MeshError(.invalidAgentName, "agent instance is longer than \(Self.maximumInstanceLength) bytes")
        }
        guard instance.unicodeScalars.allSatisfy({ Self.isWordScalar($0) || $0 == "." }), instance.first != ".", instance.last != "." else {
            throw MeshError(.invalidAgentName, "agent instance '\(instance)' may only hold letters, digits, '-', '_' and inner '.'")
        }
        self.vendor = vendor
        self.product = product
        self.instance = instance
    }

    /// Parses `vendor:product:instance`.
    public init(parsing text: String) throws(MeshError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw MeshError(.invalidAgentName, "agent name '\(text)' is not vendor:product:instance")
        }
        try self.init(vendor: String(parts[0]), product: String(parts[1]), instance: String(parts[2]))
    }

    public init?(_ description: String) {
        try? self.init(parsing: description)
    }

    public var description: String { "\(self.vendor):\(self.product):\(self.instance)" }

    /// The routing key of this agent's heartbeats.
    public var heartbeatSubject: String { QMF.Subject.heartbeat(vendor: self.vendor, product: self.product) }

    /// The durable queue holding this agent's jobs: `conductor.agent.<instance>.jobs`. It is
    /// bound to `qmf.default.direct` with its own name as routing key.
    public var jobInbox: String { "conductor.agent.\(self.instance).jobs" }

    /// The queue of this agent's requests when the coordinator made its broker login
    /// (`conductor.agent.<instance>.requests`, bound to its name on `qmf.default.direct` and
    /// to the broadcast subjects on `qmf.default.topic`): such an agent may not bind.
    public var requestQueue: String { "conductor.agent.\(self.instance).requests" }

    /// The broker login of this agent when it has one of its own (`agent.<instance>`): the
    /// coordinator accepts the agent's answers only when their `user_id` is this user.
    public var brokerUser: String { "agent.\(self.instance)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_": return true
        default: return false
        }
    }

    private static func validateWord(_ word: String, part: String) throws(MeshError) {
        guard !word.isEmpty else { throw MeshError(.invalidAgentName, "agent \(part) is empty") }
        guard word.utf8.count <= 64, word.unicodeScalars.allSatisfy(isWordScalar) else {
            throw MeshError(.invalidAgentName, "agent \(part) '\(word)' may only hold up to 64 letters, digits, '-' and '_'")
        }
    }
}
