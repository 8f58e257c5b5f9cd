import Foundation
import Mesh
import Testing

@Suite("MeshValue JSON")
struct JSONTests {
    @Test func outputIsSortedCompactAndStable() throws {
        let value: MeshValue = ["b": 1, "a": ["z": true, "y": nil], "é": "x", "B": 2.5, "list": [1, "two", 3.0]]
        #expect(value.json == #"{"B":2.5,"a":{"y":null,"z":true},"b":1,"list":[1,"two",3.0],"é":"x"}"#)
        #expect(try MeshValue(json: value.json).json == value.json.replacingOccurrences(of: "3.0", with: "3"))
    }

    @Test func stringsAreEscaped() throws {
        let value: MeshValue = .string("q\"b\\n\nt\t\u{01}/ü😀")
        #expect(value.json == #""q\"b\\n\nt\t\u0001/ü😀""#)
        #expect(try MeshValue(json: value.json) == value)
    }

    @Test func numbers() throws {
        #expect(try MeshValue(json: "1") == .int(1))
        #expect(try MeshValue(json: "-9223372036854775808") == .int(.min))
        #expect(try MeshValue(json: "2.5") == .double(2.5))
        #expect(try MeshValue(json: "1e300") == .double(1e300))
        #expect(MeshValue.double(.infinity).json == "null")
        #expect(MeshValue.double(.nan).json == "null")
        #expect(try MeshValue(json: MeshValue.double(0.1).json) == .double(0.1))
    }

    @Test func invalidJSONIsAnError() {
        #expect(throws: MeshError.self) { try MeshValue(json: "{") }
        #expect(throws: MeshError.self) { try MeshValue(json: "") }
    }
}
