import AMQPProtocol
import Foundation
import NIOCore

/// One QMFv2 message as it travels in AMQP 0-9-1: the opcode and other application headers,
/// the standard properties a reply needs, and a JSON body.
public struct MeshMessage: Hashable, Sendable {
    public var opcode: Opcode
    /// The `method` header; follows the opcode unless set otherwise.
    public var method: MessageMethod
    /// `qmf.agent`: the sending agent's name, on everything an agent sends.
    public var agent: String?
    /// `qmf.content`: what kind of data the body holds (`_data`, `_schema_class`, ...).
    public var content: String?
    /// `partial`: more responses to the same request follow this one.
    public var partial: Bool
    /// Any other application headers (reserved for extensions; unknown ones are kept).
    public var extraHeaders: [String: MeshValue]
    public var body: MeshValue

    public var replyTo: String?
    public var correlationID: String?
    /// Validated by the broker on publish: the identity of the connection that sent it.
    public var userID: String?
    public var appID: String?
    public var messageID: String?
    /// Per-message TTL (AMQP `expiration`, written in whole milliseconds).
    public var expiration: Duration?
    /// Delivery mode 2, for messages that must survive a broker restart (jobs).
    public var persistent: Bool

    public init(
        opcode: Opcode, body: MeshValue = .map([:]), agent: String? = nil, content: String? = nil,
        partial: Bool = false, replyTo: String? = nil, correlationID: String? = nil, userID: String? = nil,
        appID: String? = QMF.appID, messageID: String? = nil, expiration: Duration? = nil, persistent: Bool = false,
        extraHeaders: [String: MeshValue] = [:]
    ) {
        self.opcode = opcode
        self.method = opcode.messageMethod
        self.body = body
        self.agent = agent
        self.content = content
        self.partial = partial
        self.replyTo = replyTo
        self.correlationID = correlationID
        self.userID = userID
        self.appID = appID
        self.messageID = messageID
        self.expiration = expiration
        self.persistent = persistent
        self.extraHeaders = extraHeaders
    }

    /// A message whose body is a typed value (`HeartbeatBody`, `QueryRequest`, ...).
    public init(opcode: Opcode, encoding body: some Encodable, agent: String? = nil, content: String? = nil) throws(MeshError) {
        self.init(opcode: opcode, body: try MeshValue(encoding: body), agent: agent, content: content)
    }

    /// Reads the body as a typed value; the error names the field that is wrong.
    public func decodeBody<Body: Decodable>(_ type: Body.Type = Body.self) throws(MeshError) -> Body {
        try self.body.decode(as: Body.self)
    }

    /// A response to this request: same correlation id, no reply-to of its own. Publish it to
    /// the default exchange (`""`) with this request's `replyTo` as routing key.
    public func response(opcode: Opcode, body: MeshValue, agent: AgentName?, content: String? = nil, partial: Bool = false) -> MeshMessage {
        MeshMessage(opcode: opcode, body: body, agent: agent?.description, content: content, partial: partial, correlationID: self.correlationID)
    }

    /// An `_exception` answering this request.
    public func exceptionResponse(_ exception: ExceptionBody, agent: AgentName?) -> MeshMessage {
        self.response(opcode: .exception, body: exception.value, agent: agent)
    }
}

// MARK: - The sender's deadline

extension MeshMessage {
    /// *Extension* header: when the sender stops waiting for the answer, in milliseconds
    /// since 1970. `expiration` is relative and only holds while the message is queued; this
    /// tells an agent that reads a request late (it was stopped, or slow) that nobody waits.
    public static let deadlineHeader = "conductor.deadline"

    /// The `conductor.deadline` header, milliseconds since 1970.
    public var deadline: Int64? {
        get { self.extraHeaders[Self.deadlineHeader]?.intValue }
        set { self.extraHeaders[Self.deadlineHeader] = newValue.map(MeshValue.int) }
    }
}

// MARK: - To and from AMQP

extension MeshMessage {
    /// The AMQP properties to publish with: content type, the QMF headers, reply fields.
    public func properties() -> BasicProperties {
        var headers: [String: FieldValue] = [:]
        for (key, value) in self.extraHeaders {
            headers[key] = value.fieldValue
        }
        headers[QMF.Header.opcode] = .string(self.opcode.rawValue)
        headers[QMF.Header.method] = .string(self.method.rawValue)
        if let agent { headers[QMF.Header.agent] = .string(agent) }
        if let content { headers[QMF.Header.content] = .string(content) }
        if self.partial { headers[QMF.Header.partial] = .bool(true) }
        return BasicProperties(
            contentType: QMF.contentType,
            headers: FieldTable(headers),
            deliveryMode: self.persistent ? 2 : nil,
            correlationId: self.correlationID,
            replyTo: self.replyTo,
            expiration: self.expiration.map(Self.expirationString),
            messageId: self.messageID,
            userId: self.userID,
            appId: self.appID
        )
    }

    /// The body as compact, sorted-key JSON.
    public func bodyBuffer() -> ByteBuffer {
        ByteBuffer(bytes: self.body.jsonBytes)
    }

    /// Reads a delivered message. Refuses a missing or unknown opcode, a content type
    /// other than JSON (a missing one is accepted) and a body that is not JSON.
    public init(properties: BasicProperties, body: ByteBuffer) throws(MeshError) {
        if let contentType = properties.contentType {
            let mediaType = contentType.split(separator: ";", maxSplits: 1)[0].trimmingCharacters(in: .whitespaces).lowercased()
            guard mediaType == QMF.contentType else {
                throw MeshError(.unsupportedContentType, "content type '\(contentType)' is not \(QMF.contentType)")
            }
        }
        var extra: [String: MeshValue] = [:]
        for (key, value) in properties.headers ?? FieldTable() {
            extra[key] = MeshValue(fieldValue: value)
        }
        guard let opcodeValue = extra.removeValue(forKey: QMF.Header.opcode) else {
            throw MeshError(.missingHeader, "header '\(QMF.Header.opcode)' is missing")
        }
        guard case .string(let opcodeText) = opcodeValue, let opcode = Opcode(rawValue: opcodeText) else {
            throw MeshError(.unknownOpcode, "opcode \(opcodeValue.json) is unknown")
        }
        func stringHeader(_ key: String) throws(MeshError) -> String? {
            guard let value = extra.removeValue(forKey: key) else { return nil }
            guard case .string(let text) = value else {
                throw MeshError(.invalidHeader, "header '\(key)' should be a string, found \(value.json)")
            }
            return text
        }
        let method: MessageMethod
        if let text = try stringHeader(QMF.Header.method) {
            guard let parsed = MessageMethod(rawValue: text) else {
                throw MeshError(.invalidHeader, "header 'method' is '\(text)', expected request, response or indication")
            }
            method = parsed
        } else {
            method = opcode.messageMethod
        }
        let agent = try stringHeader(QMF.Header.agent)
        let content = try stringHeader(QMF.Header.content)
        // QMF marks a partial response by the header's presence; `false` is read as absent.
        let partial = extra.removeValue(forKey: QMF.Header.partial).map { $0 != .bool(false) } ?? false

        let bodyValue: MeshValue
        if body.readableBytes == 0 {
            bodyValue = .map([:])
        } else {
            bodyValue = try MeshValue(json: Array(body.readableBytesView))
        }
        var expiration: Duration?
        if let text = properties.expiration {
            guard let milliseconds = Int64(text), milliseconds >= 0 else {
                throw MeshError(.invalidHeader, "expiration '\(text)' is not a number of milliseconds")
            }
            expiration = .milliseconds(milliseconds)
        }
        self.init(
            opcode: opcode, body: bodyValue, agent: agent, content: content, partial: partial,
            replyTo: properties.replyTo, correlationID: properties.correlationId, userID: properties.userId,
            appID: properties.appId, messageID: properties.messageId, expiration: expiration,
            persistent: properties.deliveryMode == 2, extraHeaders: extra
        )
        self.method = method
    }

    private static func expirationString(_ duration: Duration) -> String {
        String(max(0, duration.wholeMilliseconds))
    }
}

extension Duration {
    /// Whole milliseconds (rounded down): AMQP's `expiration`, the coordinator's `*_ms`
    /// arguments, result durations.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole microseconds (rounded down): `run`'s `duration_us`.
    public var wholeMicroseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}

// MARK: - MeshValue and field tables

extension MeshValue {
    /// The value as an AMQP field value (lists become arrays, maps tables, null void).
    public var fieldValue: FieldValue {
        switch self {
        case .null: return .void
        case .bool(let b): return .bool(b)
        case .int(let i): return .int64(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .list(let l): return .array(l.map(\.fieldValue))
        case .map(let m): return .table(FieldTable(m.mapValues(\.fieldValue)))
        }
    }

    /// A header value as a MeshValue: every integer type becomes `.int`, timestamps too;
    /// decimals become doubles and byte strings strings (when UTF-8) or lists of bytes.
    public init(fieldValue: FieldValue) {
        switch fieldValue {
        case .bool(let b): self = .bool(b)
        case .float(let f): self = .double(Double(f))
        case .double(let d): self = .double(d)
        case .decimal(let d): self = .double(Double(d.value) / pow10(Int(d.scale)))
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(MeshValue.init(fieldValue:)))
        case .table(let t): self = .map(t.storage.mapValues(MeshValue.init(fieldValue:)))
        case .void: self = .null
        case .bytes(let b):
            if let text = String(validating: b, as: UTF8.self) {
                self = .string(text)
            } else {
                self = .list(b.map { .int(Int64($0)) })
            }
        case .timestamp(let t): self = Int64(exactly: t).map(MeshValue.int) ?? .double(Double(t))
        default: self = fieldValue.integerValue.map(MeshValue.int) ?? .null
        }
    }
}

private func pow10(_ exponent: Int) -> Double {
    var result = 1.0
    for _ in 0..<exponent { result *= 10 }
    return result
}
