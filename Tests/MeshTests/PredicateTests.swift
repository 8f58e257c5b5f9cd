import Mesh
import Testing

let host: MeshValue = [
    "hostname": "web-1",
    "os": "linux",
    "os_release": "12",
    "cpu_count": 4,
    "memory_total": 8_000_000_000,
    "load_average_1": 0.5,
    "up": true,
    "tags": ["a", "b"],
    "sshd": ["port": 2222],
    "custom": ["role": "web", "nothing": nil],
]

@Suite("Predicates: list grammar")
struct PredicateTests {
    @Test(arguments: [
        (#"["eq","os",["quote","linux"]]"#, true),
        (#"["eq","os",["quote","windows"]]"#, false),
        (#"["ne","os",["quote","windows"]]"#, true),
        (#"["eq","cpu_count",["quote",4]]"#, true),
        (#"["eq","cpu_count",["quote",4.0]]"#, true),
        (#"["lt","load_average_1",["quote",1]]"#, true),
        (#"["ge","memory_total",["quote",1000000]]"#, true),
        (#"["gt","memory_total",["quote",8000000000]]"#, false),
        (#"["le","memory_total",8000000000]"#, true),
        (#"["lt","hostname",["quote","web-2"]]"#, true),
        (#"["lt","hostname",["quote","web-10"]]"#, true),
        (#"["gt","hostname",["quote","web-0"]]"#, true),
        (#"["eq","sshd.port",["quote",2222]]"#, true),
        (#"["eq","custom.role",["quote","web"]]"#, true),
        (#"["eq",["quote","web"],"custom.role"]"#, true),
        (#"["eq","up",["quote",true]]"#, true),
        (#"["eq","up",true]"#, true),
        (#"["eq","tags",["quote",["a","b"]]]"#, true),
        (#"["eq","custom.nothing",["quote",null]]"#, true),
        (#"["exists","custom.role"]"#, true),
        (#"["exists","custom.nothing"]"#, true),
        (#"["exists","custom.other"]"#, false),
        (#"["exists","sshd"]"#, true),
        (#"["re_match","hostname",["quote","^web-[0-9]+$"]]"#, true),
        (#"["re_match","hostname",["quote","eb"]]"#, true),
        (#"["re_match","hostname",["quote","^db"]]"#, false),
        (#"["re_match","cpu_count",["quote","4"]]"#, false),
        (#"["and",["eq","os",["quote","linux"]],["gt","cpu_count",["quote",2]]]"#, true),
        (#"["and",["eq","os",["quote","linux"]],["gt","cpu_count",["quote",8]]]"#, false),
        (#"["or",["eq","os",["quote","bsd"]],["eq","os",["quote","linux"]],["eq","os",["quote","mac"]]]"#, true),
        (#"["or",["eq","os",["quote","bsd"]]]"#, false),
        (#"["and",["exists","os"]]"#, true),
        (#"["not",["eq","os",["quote","linux"]]]"#, false),
        (#"["eq","os","hostname"]"#, false),
        (#"["ne","os","hostname"]"#, true),
    ])
    func evaluates(json: String, expected: Bool) throws {
        let predicate = try Predicate(json: json)
        #expect(predicate.matches(host) == expected, "\(json)")
    }

    @Test("missing properties and type mismatches are false, never a crash; not of them is true", arguments: [
        #"["eq","missing",["quote",1]]"#,
        #"["ne","missing",["quote",1]]"#,
        #"["lt","missing",["quote",1]]"#,
        #"["eq","os",["quote",1]]"#,
        #"["ne","os",["quote",1]]"#,
        #"["lt","os",["quote",1]]"#,
        #"["gt","cpu_count",["quote","3"]]"#,
        #"["lt","up",["quote",false]]"#,
        #"["lt","tags",["quote",["z"]]]"#,
        #"["eq","os.name",["quote","linux"]]"#,
        #"["re_match","missing",["quote","."]]"#,
        #"["eq","sshd.port.x",["quote",1]]"#,
    ])
    func falseOnMissingOrMismatch(json: String) throws {
        let predicate = try Predicate(json: json)
        #expect(!predicate.matches(host))
        #expect(Predicate.not(predicate).matches(host))
        #expect(!predicate.matches(.null))
        #expect(!predicate.matches(["os": ["nested": 1]]))
    }

    @Test func numbersCompareAcrossIntAndDouble() throws {
        #expect(try Predicate(json: #"["eq","x",["quote",2]]"#).matches(["x": 2.0]))
        #expect(try Predicate(json: #"["lt","x",["quote",2]]"#).matches(["x": 1.5]))
        #expect(try Predicate(json: #"["ge","x",["quote",1.5]]"#).matches(["x": 2]))
        #expect(try Predicate(json: #"["gt","x",["quote",9223372036854775807]]"#).matches(["x": 9_223_372_036_854_775_806]) == false)
        #expect(try Predicate(json: #"["lt","x",["quote",9223372036854775807]]"#).matches(["x": 9_223_372_036_854_775_806]))
        #expect(try Predicate(json: #"["eq","x","x"]"#).matches(["x": .double(.nan)]) == false)
        #expect(try Predicate(json: #"["ne","x","x"]"#).matches(["x": .double(.nan)]))
    }

    @Test func dottedKeysAreFoundDirectlyToo() throws {
        let flat: MeshValue = ["sshd.port": 22]
        #expect(try Predicate(json: #"["eq","sshd.port",["quote",22]]"#).matches(flat))
    }

    @Test("errors name what is wrong and where", arguments: [
        (#"["and",["eqq","os",["quote","linux"]]]"#, "operator 'eqq' is unknown (expected one of eq ne lt le gt ge re_match exists and or not) at [1]"),
        (#"["eq","os"]"#, "'eq' takes 2 operands, found 1 at the top level"),
        (#"["not"]"#, "'not' takes 1 operand, found 0 at the top level"),
        (#"["or",["and",["eq","os",["quote",1]],["exists",["quote","x"]]]]"#, "'exists' takes a property name, not a literal at [1][2][1]"),
        (#"["re_match","hostname",["quote","(unclosed"]]"#, "regular expression '(unclosed' is invalid at [2]"),
        (#"["re_match","hostname","pattern"]"#, "'re_match' takes a quoted string pattern as its second operand at [2]"),
        (#"["eq","os",["quote"]]"#, #"operand must be a property name or ["quote", value], found ["quote"] at [2]"#),
        (#"["eq","os",{"a":1}]"#, #"operand must be a property name or ["quote", value], found a map at [2]"#),
        (#"["eq","",["quote",1]]"#, "property name is empty at [1]"),
        (#"["and"]"#, "'and' needs at least one operand at the top level"),
        (#"[]"#, "expression is an empty list at the top level"),
        (#"[1,"os"]"#, "operator must be a string, found 1 at the top level"),
        (#"{"eq":1}"#, #"expected a list like ["eq", "os", ["quote", "linux"]], found {"eq":1} at the top level"#),
        (#"["and", "os"]"#, #"expected a list like ["eq", "os", ["quote", "linux"]], found "os" at [1]"#),
        (#"["eq","os""#, "predicate is not valid JSON"),
    ])
    func errors(json: String, message: String) {
        #expect(throws: PredicateError.self) { try Predicate(json: json) }
        do {
            _ = try Predicate(json: json)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test("encodes back to the canonical list form", arguments: [
        (#"["eq", "os", ["quote", "linux"]]"#, #"["eq","os",["quote","linux"]]"#),
        (#"["eq","cpu_count",4]"#, #"["eq","cpu_count",["quote",4]]"#),
        (#"["and",["exists","a.b"],["not",["re_match","h",["quote","^w"]]],["or",["le","x",["quote",1.5]]]]"#,
         #"["and",["exists","a.b"],["not",["re_match","h",["quote","^w"]]],["or",["le","x",["quote",1.5]]]]"#),
    ])
    func roundTrips(input: String, canonical: String) throws {
        let predicate = try Predicate(json: input)
        #expect(predicate.json == canonical)
        #expect(try Predicate(json: predicate.json) == predicate)
    }

    @Test func codableAsAField() throws {
        let request = QueryRequest(what: .object, where: try Predicate(json: #"["eq","os",["quote","linux"]]"#))
        let value = try MeshValue(encoding: request)
        #expect(value.json == #"{"_what":"OBJECT","_where":["eq","os",["quote","linux"]]}"#)
        #expect(try value.decode(as: QueryRequest.self) == request)
        let bad: MeshValue = ["_what": "OBJECT", "_where": ["eqq", "os"]]
        #expect(throws: MeshError.self) { try bad.decode(as: QueryRequest.self) }
    }

    @Test func parseChoosesTheFormByTheFirstCharacter() throws {
        #expect(try Predicate.parse(#"  ["eq","os",["quote","linux"]]"#) == Predicate.parse("os=linux"))
    }
}
