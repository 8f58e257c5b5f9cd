/// Something on the bus is not what the protocol says: a message we cannot read, a name
/// that is not an agent name. `message` is written for the person who sent it.
public struct MeshError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { self.name }

        public static let invalidJSON = Code("invalid-json")
        public static let invalidBody = Code("invalid-body")
        public static let missingHeader = Code("missing-header")
        public static let invalidHeader = Code("invalid-header")
        public static let unknownOpcode = Code("unknown-opcode")
        public static let unsupportedContentType = Code("unsupported-content-type")
        public static let invalidAgentName = Code("invalid-agent-name")
        public static let invalidArguments = Code("invalid-arguments")
        /// The bus stopped delivering (a channel was closed or recovery gave up).
        public static let busLost = Code("bus-lost")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }

    /// The `_exception` a peer should receive for this error.
    public var exception: ExceptionBody {
        ExceptionBody(code: .invalidRequest, text: self.message)
    }

    /// A one-line reason for a Codable failure, naming the field (`services[1].name`).
    static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let index = key.intValue {
                    out += "[\(index)]"
                } else {
                    out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return out.isEmpty ? "the top level" : "'\(out)'"
        }
        switch decoding {
        case .keyNotFound(let key, let context):
            let inner = path(context.codingPath + [key])
            return "\(inner) is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) should be \(jsonTypeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) should be \(jsonTypeName(type)), not null"
        case .dataCorrupted(let context):
            let underlying = context.underlyingError.map { " (\($0))" } ?? ""
            return "\(path(context.codingPath)): \(context.debugDescription)\(underlying)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "a map" }
            return "a \(name)"
        }
    }
}
