import AMQPProtocol

/// The `x-` arguments of queue.declare the broker acts on, read and checked once at
/// declare time (invalid values: 406 PRECONDITION_FAILED, as RabbitMQ answers).
struct QueueArguments: Equatable {
    enum Overflow: String, Equatable {
        case dropHead = "drop-head"
        case rejectPublish = "reject-publish"
        case rejectPublishDLX = "reject-publish-dlx"
    }

    /// x-message-ttl, milliseconds.
    var messageTTL: Int64?
    /// x-expires, milliseconds unused before the queue is deleted.
    var expires: Int64?
    var maxLength: Int?
    var maxLengthBytes: Int?
    var overflow = Overflow.dropHead
    var deadLetterExchange: String?
    var deadLetterRoutingKey: String?
    /// x-max-priority: priorities 0...this (RabbitMQ caps it at 255).
    var maxPriority: UInt8?
    var singleActiveConsumer = false

    /// The arguments whose values are compared when a queue is declared again.
    static let checkedKeys = [
        "x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-overflow", "x-dead-letter-exchange",
        "x-dead-letter-routing-key", "x-max-priority", "x-single-active-consumer",
    ]

    init() {}

    init(_ table: FieldTable, queue: String, vhost: String) throws(BrokerError) {
        func invalid(_ key: String, _ why: String) -> BrokerError {
            .preconditionFailed("invalid arg '\(key)' for queue '\(queue)' in vhost '\(vhost)': \(why)")
        }
        func integer(_ key: String, minimum: Int64) throws(BrokerError) -> Int64? {
            guard let value = table[key] else { return nil }
            guard let number = value.integerValue else { throw invalid(key, "{unacceptable_type,\(Self.typeName(value))}") }
            guard number >= minimum else {
                throw invalid(key, minimum == 0 ? "{value_negative,\(number)}" : "{value_zero,\(number)}")
            }
            return number
        }
        self.messageTTL = try integer("x-message-ttl", minimum: 0)
        self.expires = try integer("x-expires", minimum: 1)
        self.maxLength = try integer("x-max-length", minimum: 0).map { Int($0) }
        self.maxLengthBytes = try integer("x-max-length-bytes", minimum: 0).map { Int($0) }
        if let value = table["x-overflow"] {
            guard let text = value.stringValue, let overflow = Overflow(rawValue: text) else {
                throw invalid("x-overflow", "{unacceptable_value,\(value.stringValue ?? Self.typeName(value))}")
            }
            self.overflow = overflow
        }
        if let value = table["x-dead-letter-exchange"] {
            guard let text = value.stringValue else { throw invalid("x-dead-letter-exchange", "{unacceptable_type,\(Self.typeName(value))}") }
            self.deadLetterExchange = text
        }
        if let value = table["x-dead-letter-routing-key"] {
            guard let text = value.stringValue else { throw invalid("x-dead-letter-routing-key", "{unacceptable_type,\(Self.typeName(value))}") }
            guard self.deadLetterExchange != nil else {
                throw invalid("x-dead-letter-routing-key", "Key x-dead-letter-exchange should be present if x-dead-letter-routing-key is set")
            }
            self.deadLetterRoutingKey = text
        }
        if let priority = try integer("x-max-priority", minimum: 0) {
            self.maxPriority = UInt8(Swift.min(priority, 255))
        }
        if let value = table["x-single-active-consumer"] {
            guard let flag = value.boolValue else { throw invalid("x-single-active-consumer", "{unacceptable_type,\(Self.typeName(value))}") }
            self.singleActiveConsumer = flag
        }
    }

    /// RabbitMQ's names for field types, used in its error texts.
    static func typeName(_ value: FieldValue) -> String {
        switch value {
        case .bool: return "bool"
        case .int8: return "byte"
        case .uint8: return "unsignedbyte"
        case .int16: return "short"
        case .uint16: return "unsignedshort"
        case .int32: return "signedint"
        case .uint32: return "unsignedint"
        case .int64: return "long"
        case .float: return "float"
        case .double: return "double"
        case .decimal: return "decimal"
        case .string: return "longstr"
        case .array: return "array"
        case .timestamp: return "timestamp"
        case .table: return "table"
        case .void: return "void"
        case .bytes: return "binary"
        }
    }

    /// 406 if a redeclare changes one of the arguments the queue acts on.
    static func checkEquivalent(existing: FieldTable, received: FieldTable, queue: String, vhost: String) throws(BrokerError) {
        for key in Self.checkedKeys {
            let old = existing[key]
            let new = received[key]
            if old == new { continue }
            // Integers of different widths with the same value are the same argument.
            if let a = old?.integerValue, let b = new?.integerValue, a == b { continue }
            func describe(_ value: FieldValue?) -> String {
                guard let value else { return "none" }
                return "the value '\(value.stringValue ?? value.integerValue.map(String.init) ?? "\(value)")' of type '\(Self.typeName(value))'"
            }
            throw .preconditionFailed("inequivalent arg '\(key)' for queue '\(queue)' in vhost '\(vhost)': received \(describe(new)) but current is \(describe(old))")
        }
    }
}

/// A message's `expiration` property: milliseconds as a decimal string (RabbitMQ refuses
/// anything else with 406 on publish).
enum MessageExpiration {
    static func milliseconds(_ expiration: String?) throws(BrokerError) -> Int64? {
        guard let expiration else { return nil }
        guard let value = Int64(expiration), value >= 0 else {
            throw .preconditionFailed("invalid expiration '\(expiration)'")
        }
        return value
    }
}
