import Foundation
import Testing

@testable import Mesh

/// MeshValue(json:) reads JSON with its own parser; it must read what JSONDecoder (the
/// Codable conformance, used before) read, and refuse what it refused.
@Suite("MeshValue JSON parser")
struct JSONParserTests {
    /// The old way of reading: JSONDecoder through MeshValue's Decodable conformance.
    static func viaDecoder(_ text: String) -> MeshValue? {
        try? JSONDecoder().decode(MeshValue.self, from: Data(text.utf8))
    }

    static let accepted = [
        "0", "-0", "7", " 7 ", "\n\t[\r]", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
        "12345678901234567890", "123456789012345678", "1234567890123456789", "1.0", "3.0", "-0.0", "1e2", "1E2", "1.5e3", "100e-2",
        "0.1", "2.5e-3", "1e300", "1e-400", "-2.5", "true", "false", "null", "\"\"", "\"a\"", "\"\\/\"", "\"\\u00e9\"", "\"é😀\"",
        "\"\\ud83d\\ude00\"", "\"q\\\"b\\\\n\\nt\\t\\u0001\\b\\f\\r\"", "[]", "{}", "[1,]", "{\"a\":1,}", "{\"a\":1,\"a\":2}",
        "[1, [2, [3, {\"k\": [null, true, \"s\"]}]]]", #"{"_method_name":"lock_acquire","_arguments":{"lock":"db","ttl_ms":30000,"owner":null}}"#,
    ]

    static let refused = [
        "", " ", "{", "[", "[1", "{\"a\"", "{\"a\":}", "{a:1}", "01", "-", "1.", ".5", "+1", "1e", "1e+", "NaN", "1e400", "nul",
        "tru", "[1] x", "\"abc", "\"\\ud83d\"", "\"\\ude00\"", "\"\\x\"", "\"\\u12\"", "\"a\u{01}b\"", "[,]", "{,}", "[1,,2]",
    ]

    @Test(arguments: accepted) func readsWhatJSONDecoderRead(text: String) throws {
        let expected = try #require(Self.viaDecoder(text), "JSONDecoder should read \(text)")
        #expect(try MeshValue(json: text) == expected)
    }

    @Test(arguments: refused) func refusesWhatJSONDecoderRefused(text: String) {
        #expect(Self.viaDecoder(text) == nil)
        #expect(throws: MeshError.self) { try MeshValue(json: text) }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: MeshError.self) { try MeshValue(json: [UInt8(ascii: "\""), 0xFF, 0xFE, UInt8(ascii: "\"")]) }
    }

    /// Found by the differential fuzzer (Fuzz/MeshJSONFuzzer): input that is not JSON but
    /// that JSONDecoder reads anyway. It stops at a NUL, and does not check the value of a
    /// duplicate key it drops. We refuse them.
    @Test(arguments: [
        [UInt8(ascii: "9"), 0, UInt8(ascii: "\n"), 0, UInt8(ascii: "+")],
        Array(#"{"a":1,"a":"x"#.utf8) + [0x01] + Array(#"y"}"#.utf8),
        Array(#"{"a":1,"a":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8),
    ])
    func whatJSONDecoderWronglyReadIsRefused(bytes: [UInt8]) {
        #expect((try? JSONDecoder().decode(MeshValue.self, from: Data(bytes))) != nil, "JSONDecoder got stricter: move this to `refused`")
        #expect(throws: MeshError.self) { try MeshValue(json: bytes) }
    }

    /// Past 2^53 a long literal is read to the nearest double; JSONDecoder drops the
    /// fraction first, so the two may differ in the last place (the fuzzer allows that).
    @Test func aLongLiteralIsReadToTheNearestDouble() throws {
        #expect(try MeshValue(json: "9222530372253037.08") == .int(9_222_530_372_253_038))
        #expect(try MeshValue(json: "922337203685574780.7") == .int(922_337_203_685_574_784))
    }

    @Test func theErrorSaysWhereAndWhy() {
        #expect {
            try MeshValue(json: #"{"a": tru}"#)
        } throws: { error in
            let error = error as? MeshError
            return error?.code == .invalidJSON && error?.message.contains("at byte 6") == true
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: MeshError.self) { try MeshValue(json: deep) }
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(try MeshValue(json: fine) == Self.viaDecoder(fine))
    }

    /// Random trees written by `json` come back equal to what JSONDecoder reads from them.
    @Test func randomTreesReadTheSameBothWays() throws {
        var generator = SplitMix(seed: 0x5EED)
        for _ in 0..<500 {
            let value = Self.randomValue(depth: 0, &generator)
            let text = value.json
            #expect(try MeshValue(json: text) == Self.viaDecoder(text), "\(text)")
        }
    }

    private static func randomValue(depth: Int, _ generator: inout SplitMix) -> MeshValue {
        let pick = Int(generator.next() % (depth > 3 ? 5 : 7))
        switch pick {
        case 0: return .null
        case 1: return .bool(generator.next() % 2 == 0)
        case 2: return .int(Int64(bitPattern: generator.next()) >> Int64(generator.next() % 64))
        case 3: return .double(Double(Int64(bitPattern: generator.next()) >> 20) / Double(1 << (generator.next() % 40)))
        case 4:
            let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "é", "😀", "\u{7F}"]
            return .string(String((0..<Int(generator.next() % 12)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }))
        case 5: return .list((0..<Int(generator.next() % 4)).map { _ in randomValue(depth: depth + 1, &generator) })
        default:
            var map: [String: MeshValue] = [:]
            for index in 0..<Int(generator.next() % 4) { map["k\(index)\(generator.next() % 3 == 0 ? "é\"" : "")"] = randomValue(depth: depth + 1, &generator) }
            return .map(map)
        }
    }
}

private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension JSONParserTests {
    /// Found by the fuzzer in CI: a literal below Int64.min whose nearest double is -2^63
    /// read as a double that was written back as -9.223372036854776e+18 and then read as
    /// Int64.min. Such literals read as Int64.min at once: JSONDecoder's double is the same
    /// number, and a value must read back as what it was (signatures cover canonical JSON).
    @Test func aLiteralBelowInt64MinRoundingToItReadsBackTheSame() throws {
        let value = try MeshValue(json: "-9223372036854776412")
        #expect(value == .int(.min))
        #expect(Self.viaDecoder("-9223372036854776412") == .double(-9_223_372_036_854_775_808.0))
        #expect(try MeshValue(json: value.jsonBytes) == value)
        #expect(try MeshValue(json: "-9223372036854775809") == .int(.min))
    }
}
