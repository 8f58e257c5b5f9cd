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
        String(decoding: self.jsonBytes, as: UTF8.self)
    }

    /// The value as compact JSON bytes with sorted keys.
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        self.writeJSON(into: &out)
        return out
    }

    // Written as UTF-8 bytes, not appended to a String scalar by scalar: every message body
    // goes through here, and at a thousand agents the String writer was a sixth of an
    // agent's work per query (docs/benchmarks.md, "A thousand agents").
    private func writeJSON(into out: inout [UInt8]) {
        switch self {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            out.append(contentsOf: String(i).utf8)
        case .double(let d):
            // JSON has no NaN or infinities; null is what JavaScript writes for them too.
            guard d.isFinite else { out.append(contentsOf: "null".utf8); return }
            out.append(contentsOf: "\(d)".utf8)
        case .string(let s):
            Self.writeJSONString(s, into: &out)
        case .list(let list):
            out.append(UInt8(ascii: "["))
            for (index, element) in list.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .map(let map):
            out.append(UInt8(ascii: "{"))
            for (index, key) in map.keys.sorted(by: Self.codePointOrder).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeJSONString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                map[key]!.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Orders strings by Unicode code point, as Python's `sort_keys` does. UTF-8 keeps
    /// code point order byte by byte, so the bytes are compared.
    static func codePointOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// A JSON string: `"`, `\` and control characters escaped, everything else as its
    /// UTF-8 bytes (a multi-byte sequence never contains a byte below 0x80).
    private static func writeJSONString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: utf8)
        } else {
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                case UInt8(ascii: "\r"): out.append(contentsOf: "\\r".utf8)
                case UInt8(ascii: "\t"): out.append(contentsOf: "\\t".utf8)
                case 0x08: out.append(contentsOf: "\\b".utf8)
                case 0x0C: out.append(contentsOf: "\\f".utf8)
                case ..<0x20:
                    let hex = String(byte, radix: 16)
                    out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                default:
                    out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
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
