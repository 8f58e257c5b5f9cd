// Reads JSON straight into a MeshValue tree, one pass over the bytes. Every message body
// on the bus is parsed here, so it matters: through JSONDecoder, MeshValue's Decodable
// conformance tries each JSON type in turn (a thrown error per miss), which made parsing
// the largest CPU cost of a coordinator call (docs/benchmarks.md, "Locks").
//
// It reads what JSONDecoder read: a number that is a whole number within Int64 is an
// `.int` (`3.0` and `1e2` too), any other finite number a `.double`; the first of
// duplicate keys wins; a trailing comma in an array or object is accepted. Nesting is
// bounded so hostile input cannot exhaust the stack.

struct MeshJSONParser {
    struct Failure: Error {
        var reason: String
        var offset: Int
    }

    static let maximumDepth = 512

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses one JSON value (any kind at the top level) that makes up all of `bytes`.
    static func parse(_ bytes: [UInt8]) throws(Failure) -> MeshValue {
        var parser = MeshJSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.failure("unexpected text after the value") }
        return value
    }

    private func failure(_ reason: String) -> Failure { Failure(reason: reason, offset: self.index) }

    private var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private mutating func skipWhitespace() {
        while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { self.index += 1 }
    }

    private mutating func expect(_ literal: StaticString, _ value: MeshValue) throws(Failure) -> MeshValue {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.failure("unexpected end of input") }
        for offset in 0..<count where self.bytes[self.index + offset] != literal.utf8Start[offset] {
            throw self.failure("unexpected character")
        }
        self.index += count
        return value
    }

    private mutating func parseValue() throws(Failure) -> MeshValue {
        guard let byte = self.current else { throw self.failure("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try self.parseObject()
        case UInt8(ascii: "["): return try self.parseArray()
        case UInt8(ascii: "\""): return .string(try self.parseString())
        case UInt8(ascii: "t"): return try self.expect("true", .bool(true))
        case UInt8(ascii: "f"): return try self.expect("false", .bool(false))
        case UInt8(ascii: "n"): return try self.expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try self.parseNumber()
        default: throw self.failure("unexpected character")
        }
    }

    private mutating func enter() throws(Failure) {
        self.depth += 1
        guard self.depth <= Self.maximumDepth else { throw self.failure("nested deeper than \(Self.maximumDepth) levels") }
        self.index += 1
    }

    private mutating func parseArray() throws(Failure) -> MeshValue {
        try self.enter()
        defer { self.depth -= 1 }
        var list: [MeshValue] = []
        self.skipWhitespace()
        if self.current == UInt8(ascii: "]") {
            self.index += 1
            return .list(list)
        }
        while true {
            list.append(try self.parseValue())
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ",")?:
                self.index += 1
                self.skipWhitespace()
                if self.current == UInt8(ascii: "]") {
                    self.index += 1
                    return .list(list)
                }
            case UInt8(ascii: "]")?:
                self.index += 1
                return .list(list)
            case nil: throw self.failure("unexpected end of input in an array")
            default: throw self.failure("expected ',' or ']'")
            }
        }
    }

    private mutating func parseObject() throws(Failure) -> MeshValue {
        try self.enter()
        defer { self.depth -= 1 }
        var map: [String: MeshValue] = [:]
        self.skipWhitespace()
        if self.current == UInt8(ascii: "}") {
            self.index += 1
            return .map(map)
        }
        while true {
            guard self.current == UInt8(ascii: "\"") else { throw self.failure("expected a key in quotes") }
            let key = try self.parseString()
            self.skipWhitespace()
            guard self.current == UInt8(ascii: ":") else { throw self.failure("expected ':'") }
            self.index += 1
            self.skipWhitespace()
            let value = try self.parseValue()
            if map[key] == nil { map[key] = value }
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ",")?:
                self.index += 1
                self.skipWhitespace()
                if self.current == UInt8(ascii: "}") {
                    self.index += 1
                    return .map(map)
                }
            case UInt8(ascii: "}")?:
                self.index += 1
                return .map(map)
            case nil: throw self.failure("unexpected end of input in an object")
            default: throw self.failure("expected ',' or '}'")
            }
        }
    }

    /// At the opening quote; returns the string and stands after the closing quote.
    private mutating func parseString() throws(Failure) -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes.
        while let byte = self.current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw self.failure("control character in a string") }
            self.index += 1
        }
        guard let stop = self.current else { throw self.failure("unterminated string") }
        if stop == UInt8(ascii: "\"") {
            self.index += 1
            return try self.string(self.bytes[start..<(self.index - 1)], start: start)
        }
        var utf8 = Array(self.bytes[start..<self.index])
        while true {
            guard let byte = self.current else { throw self.failure("unterminated string") }
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try self.string(utf8, start: start)
            case UInt8(ascii: "\\"):
                try self.parseEscape(into: &utf8)
            default:
                guard byte >= 0x20 else {
                    self.index -= 1
                    throw self.failure("control character in a string")
                }
                utf8.append(byte)
            }
        }
    }

    private func string(_ utf8: some Collection<UInt8>, start: Int) throws(Failure) -> String {
        guard let string = String(validating: utf8, as: UTF8.self) else { throw Failure(reason: "invalid UTF-8 in a string", offset: start) }
        return string
    }

    /// After a backslash.
    private mutating func parseEscape(into utf8: inout [UInt8]) throws(Failure) {
        guard let byte = self.current else { throw self.failure("unterminated string") }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try self.parseHex4())
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard self.index + 1 < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"), self.bytes[self.index + 1] == UInt8(ascii: "u") else {
                    throw self.failure("unpaired surrogate in a \\u escape")
                }
                self.index += 2
                let low = UInt32(try self.parseHex4())
                guard (0xDC00..<0xE000).contains(low) else { throw self.failure("unpaired surrogate in a \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw self.failure("unpaired surrogate in a \\u escape")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw self.failure("invalid \\u escape") }
            utf8.append(contentsOf: UTF8.encode(unicode)!)
        default:
            self.index -= 1
            throw self.failure("invalid escape")
        }
    }

    private mutating func parseHex4() throws(Failure) -> UInt16 {
        guard self.index + 4 <= self.bytes.count else { throw self.failure("unterminated \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw self.failure("invalid hex digit in a \\u escape")
            }
            value = value << 4 | UInt16(digit)
            self.index += 1
        }
        return value
    }

    private mutating func digits() -> Int {
        let start = self.index
        while let byte = self.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { self.index += 1 }
        return self.index - start
    }

    private mutating func parseNumber() throws(Failure) -> MeshValue {
        let start = self.index
        let negative = self.current == UInt8(ascii: "-")
        if negative { self.index += 1 }
        let integerStart = self.index
        let integerDigits = self.digits()
        guard integerDigits > 0 else { throw self.failure("expected a digit") }
        guard integerDigits == 1 || self.bytes[integerStart] != UInt8(ascii: "0") else {
            throw Failure(reason: "a number cannot start with 0", offset: integerStart)
        }
        var isInteger = true
        if self.current == UInt8(ascii: ".") {
            isInteger = false
            self.index += 1
            guard self.digits() > 0 else { throw self.failure("expected a digit after '.'") }
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            isInteger = false
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
            guard self.digits() > 0 else { throw self.failure("expected a digit in the exponent") }
        }
        if isInteger, integerDigits <= 18 {
            // Up to 18 digits always fit in an Int64.
            var value: Int64 = 0
            for byte in self.bytes[integerStart..<self.index] { value = value * 10 + Int64(byte - UInt8(ascii: "0")) }
            return .int(negative ? -value : value)
        }
        let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        if isInteger, let value = Int64(text) { return .int(value) }
        guard let double = Double(text), double.isFinite else { throw Failure(reason: "number \(text) is out of range", offset: start) }
        // A whole number within Int64 reads as an integer, however it was written; an integer
        // literal beyond Int64 stays a double. The one literal beyond Int64 whose double is
        // within it (below Int64.min, rounding to -2^63) reads as Int64.min: as a double it
        // would be written back as -9.223372036854776e+18 and read as Int64.min anyway.
        if let whole = Int64(exactly: double) { return .int(whole) }
        return .double(double)
    }
}
