/// A value on the bus: facts, query results, method arguments and job parameters are
/// all trees of these, carried as JSON.
public enum MeshValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case list([MeshValue])
    case map([String: MeshValue])

    /// Looks up a dotted path (`sshd.port`, `interfaces.eth0.addresses`) through maps.
    /// A key that itself contains dots is found too: the longest matching key wins.
    public subscript(path path: String) -> MeshValue? {
        guard case .map(let map) = self else { return nil }
        if let direct = map[path] { return direct }
        var end = path.endIndex
        while let dot = path[..<end].lastIndex(of: ".") {
            if let inner = map[String(path[..<dot])], let found = inner[path: String(path[path.index(after: dot)...])] {
                return found
            }
            end = dot
        }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int64(exactly: d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var listValue: [MeshValue]? {
        if case .list(let l) = self { return l }
        return nil
    }

    public var mapValue: [String: MeshValue]? {
        if case .map(let m) = self { return m }
        return nil
    }
}

extension MeshValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let int = try? container.decode(Int64.self) {
            self = .int(int)
        } else if let double = try? container.decode(Double.self) {
            self = .double(double)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let list = try? container.decode([MeshValue].self) {
            self = .list(list)
        } else if let map = try? container.decode([String: MeshValue].self) {
            self = .map(map)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .int(let i): try container.encode(i)
        case .double(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .list(let l): try container.encode(l)
        case .map(let m): try container.encode(m)
        }
    }
}

extension MeshValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: MeshValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, MeshValue)...) {
        self = .map(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
