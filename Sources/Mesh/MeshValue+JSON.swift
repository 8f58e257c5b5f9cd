import Foundation

// JSON in and out of MeshValue. Output is written by hand rather than by JSONEncoder so
// that it is byte-stable: keys sorted by code point, no escaped slashes, and a double
// always keeps its decimal point (1.0 stays a double when read back).

extension MeshValue {
    /// Parses a JSON document (any value at the top, not only objects and arrays).
    public init(json: some DataProtocol) throws(MeshError) {
        do {
            self = try MeshJSONParser.parse(Array(json))
        } catch {
            throw MeshError(.invalidJSON, "the body is not valid JSON (\(error.reason) at byte \(error.offset))")
        }
    }

    /// Parses a JSON document held in a string.
    public init(json: String) throws(MeshError) {
        try self.init(json: Array(json.utf8))
    }

    /// The value as compact JSON with sorted keys.
    public var json: String {
        var out = ""
        self.writeJSON(into: &out)
        return out
    }

    /// The value as compact JSON bytes with sorted keys.
    public var jsonBytes: [UInt8] { Array(self.json.utf8) }

    private func writeJSON(into out: inout String) {
        switch self {
        case .null:
            out += "null"
        case .bool(let b):
            out += b ? "true" : "false"
        case .int(let i):
            out += String(i)
        case .double(let d):
            // JSON has no NaN or infinities; null is what JavaScript writes for them too.
            guard d.isFinite else { out += "null"; return }
            out += "\(d)"
        case .string(let s):
            Self.writeJSONString(s, into: &out)
        case .list(let list):
            out += "["
            for (index, element) in list.enumerated() {
                if index > 0 { out += "," }
                element.writeJSON(into: &out)
            }
            out += "]"
        case .map(let map):
            out += "{"
            for (index, key) in map.keys.sorted(by: Self.codePointOrder).enumerated() {
                if index > 0 { out += "," }
                Self.writeJSONString(key, into: &out)
                out += ":"
                map[key]!.writeJSON(into: &out)
            }
            out += "}"
        }
    }

    /// Orders strings by Unicode code point, as Python's `sort_keys` does.
    static func codePointOrder(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    private static func writeJSONString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension MeshValue: CustomStringConvertible {
    public var description: String { self.json }
}

// Typed bodies go through JSON to become MeshValues and back. It costs a copy, but keeps
// one definition of each wire shape: the Codable conformance.
extension MeshValue {
    /// Encodes any Codable value into a MeshValue tree.
    public init(encoding value: some Encodable) throws(MeshError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(value)
        } catch {
            throw MeshError(.invalidBody, "cannot encode \(type(of: value)) (\(MeshError.describe(error)))")
        }
        try self.init(json: data)
    }

    /// Decodes this tree as a Codable type; the error names the field that is wrong.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws(MeshError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(self.jsonBytes))
        } catch {
            throw MeshError(.invalidBody, "not a valid \(T.self): \(MeshError.describe(error))")
        }
    }
}
