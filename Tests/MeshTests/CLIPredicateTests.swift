import Mesh
import Testing

@Suite("Predicates: CLI form")
struct CLIPredicateTests {
    @Test("parses to the list form", arguments: [
        ("os=linux", #"["eq","os",["quote","linux"]]"#),
        ("os==linux", #"["eq","os",["quote","linux"]]"#),
        ("memory_total>=1000000", #"["ge","memory_total",["quote",1000000]]"#),
        ("load_average_1 < 0.5", #"["lt","load_average_1",["quote",0.5]]"#),
        ("cpu_count>2", #"["gt","cpu_count",["quote",2]]"#),
        ("cpu_count<=-1", #"["le","cpu_count",["quote",-1]]"#),
        ("hostname~^web", #"["re_match","hostname",["quote","^web"]]"#),
        ("hostname!~^db", #"["not",["re_match","hostname",["quote","^db"]]]"#),
        ("sshd.port!=22", #"["ne","sshd.port",["quote",22]]"#),
        ("has:custom.role", #"["exists","custom.role"]"#),
        ("!has:custom.retired", #"["not",["exists","custom.retired"]]"#),
        ("up=true", #"["eq","up",["quote",true]]"#),
        ("version=\"10\"", #"["eq","version",["quote","10"]]"#),
        ("hex=0x10", #"["eq","hex",["quote","0x10"]]"#),
        ("motd=\"a, b and c\"", #"["eq","motd",["quote","a, b and c"]]"#),
        ("q=\"say \\\"hi\\\"\"", #"["eq","q",["quote","say \"hi\""]]"#),
        ("empty=\"\"", #"["eq","empty",["quote",""]]"#),
        ("expr=a=b", #"["eq","expr",["quote","a=b"]]"#),
        ("os=linux,cpu_count>2", #"["and",["eq","os",["quote","linux"]],["gt","cpu_count",["quote",2]]]"#),
        ("os=linux and cpu_count>2 AND has:x", #"["and",["eq","os",["quote","linux"]],["gt","cpu_count",["quote",2]],["exists","x"]]"#),
        ("brand=android", #"["eq","brand",["quote","android"]]"#),
    ])
    func parses(cli: String, json: String) throws {
        #expect(try Predicate.parse(cli: cli).json == json)
    }

    @Test("errors name the clause", arguments: [
        ("", "predicate is empty"),
        ("os", "no operator (expected one of = != < <= > >= ~ !~ or has:PATH) at clause 1 ('os')"),
        ("os=linux,,x=1", "empty clause at clause 2"),
        ("os=linux, =linux", "property name is missing at clause 2 ('=linux')"),
        ("os=", "value is missing after '=' (write \"\" for an empty string) at clause 1 ('os=')"),
        ("host name=x", "property name 'host name' contains a space or a quote at clause 1 ('host name=x')"),
        ("hostname~(", "regular expression '(' is invalid at clause 1 ('hostname~(')"),
        ("os=\"linux", "a double quote is not closed"),
        ("os=\"li\"nux", "text after a closing double quote at clause 1 ('os=\"li\"nux')"),
        ("has:", "property name is missing at clause 1 ('has:')"),
        ("os=!linux", nil),
    ] as [(String, String?)])
    func errors(cli: String, message: String?) {
        do {
            let parsed = try Predicate.parse(cli: cli)
            #expect(message == nil, "parsed as \(parsed)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func evaluatesAgainstFacts() throws {
        let predicate = try Predicate.parse(cli: "os=linux, hostname~^web, sshd.port!=22, has:custom.role, memory_total>=1000000")
        #expect(predicate.matches(host))
        #expect(!(try Predicate.parse(cli: "os=linux, sshd.port=22").matches(host)))
    }
}
