import Conductor
import Testing

/// Broken deployables, each with the one error it must produce: where, and what it says.
struct BrokenDeployable: CustomTestStringConvertible, Sendable {
    var name: String
    var yaml: String
    /// `line:column`
    var location: String
    var message: String
    var code: DeployableError.Code

    var testDescription: String { self.name }
}

let brokenDeployables: [BrokenDeployable] = [
    BrokenDeployable(
        name: "YAML syntax error",
        yaml: "name: x\ninstances:\n  db: [unclosed\n",
        location: "4:1", message: "invalid YAML", code: .syntax),
    BrokenDeployable(
        name: "unknown top-level key with suggestion",
        yaml: "name: x\ninstance:\n  db: {services: {s: {script: 'true'}}}\n",
        location: "2:1", message: "unknown key 'instance' in the top level (did you mean 'instances'?)", code: .unknownKey),
    BrokenDeployable(
        name: "unknown instance key",
        yaml: "name: x\ninstances:\n  db:\n    cuont: 2\n    services: {s: {script: 'true'}}\n",
        location: "4:5", message: "unknown key 'cuont' in instance 'db' (did you mean 'count'?)", code: .unknownKey),
    BrokenDeployable(
        name: "unknown service key",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s:\n        scirpt: 'true'\n",
        location: "6:9", message: "unknown key 'scirpt' in service 'db.s' (did you mean 'script'?)", code: .unknownKey),
    BrokenDeployable(
        name: "missing name",
        yaml: "instances:\n  db: {services: {s: {script: 'true'}}}\n",
        location: "1:1", message: "the deployable has no 'name'", code: .missingKey),
    BrokenDeployable(
        name: "count is a string",
        yaml: "name: x\ninstances:\n  db:\n    count: two\n    services: {s: {script: 'true'}}\n",
        location: "4:12", message: "count must be an integer, got a string", code: .typeMismatch),
    BrokenDeployable(
        name: "count zero",
        yaml: "name: x\ninstances:\n  db:\n    count: 0\n    services: {s: {script: 'true'}}\n",
        location: "4:12", message: "count must be from 1 to 10000, got 0", code: .invalidValue),
    BrokenDeployable(
        name: "services is a list",
        yaml: "name: x\ninstances:\n  db:\n    services: [a, b]\n",
        location: "4:15", message: "services of 'db' must be a map, got a list", code: .typeMismatch),
    BrokenDeployable(
        name: "invalid instance name",
        yaml: "name: x\ninstances:\n  1db: {services: {s: {script: 'true'}}}\n",
        location: "3:3", message: "invalid instance name '1db'", code: .invalidName),
    BrokenDeployable(
        name: "parameter name with a dash",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s:\n        script: 'true'\n        parameters: {db-host: a}\n",
        location: "7:22", message: "invalid parameter name 'db-host'", code: .invalidName),
    BrokenDeployable(
        name: "duplicate instance",
        yaml: "name: x\ninstances:\n  db: {services: {s: {script: 'true'}}}\n  db: {services: {s: {script: 'true'}}}\n",
        location: "4:3", message: "duplicate key 'db'", code: .duplicateName),
    BrokenDeployable(
        name: "unknown kind",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s: {kind: pupet, manifest: 'x'}\n",
        location: "5:17", message: "unknown kind 'pupet' (did you mean 'puppet'?)", code: .invalidValue),
    BrokenDeployable(
        name: "script for puppet",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s: {kind: puppet, script: 'x'}\n",
        location: "5:33", message: "a puppet service has a 'manifest', not a 'script'", code: .invalidValue),
    BrokenDeployable(
        name: "service without a script",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s: {parameters: {a: 1}}\n",
        location: "5:7", message: "service 'db.s' has no 'script', 'manifest' or 'file'", code: .missingKey),
    BrokenDeployable(
        name: "secret with a bad length",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s:\n        script: 'true'\n        parameters: {pw: {secret: {length: 3}}}\n",
        location: "7:44", message: "secret length must be an integer from 8 to 1024, got 3", code: .invalidValue),
    BrokenDeployable(
        name: "unclosed reference",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s:\n        script: 'true'\n        parameters:\n          a: x${db.ipaddress\n",
        location: "8:15", message: "'${' without a closing '}'", code: .invalidValue),
    BrokenDeployable(
        name: "unknown instance in a reference",
        yaml: "name: x\ninstances:\n  db: {services: {s: {script: 'true'}}}\n  web:\n    services:\n      app:\n        script: 'true'\n        parameters:\n          db_host: ${dbb.ipaddress}\n",
        location: "9:20", message: "${dbb.ipaddress}: no instance named 'dbb' (did you mean 'db'?)", code: .unknownReference),
    BrokenDeployable(
        name: "unknown fact",
        yaml: "name: x\ninstances:\n  db: {services: {s: {script: 'true'}}}\n  web:\n    services:\n      app:\n        script: 'true'\n        parameters:\n          db_host: 'http://${db.ipadress}/'\n",
        location: "9:28", message: "${db.ipadress}: instance 'db' has no fact or service 'ipadress' (did you mean 'ipaddress'?)", code: .unknownReference),
    BrokenDeployable(
        name: "unknown service parameter",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      mysql: {script: 'true', parameters: {port: 3306}}\n  web:\n    services:\n      app:\n        script: 'true'\n        parameters:\n          db_port: ${db.mysql.prot}\n",
        location: "11:20", message: "${db.mysql.prot}: service 'db.mysql' has no parameter 'prot' (did you mean 'port'?); its parameters are: port", code: .unknownReference),
    BrokenDeployable(
        name: "ambiguous member",
        yaml: "name: x\ninstances:\n  web: {count: 2, services: {s: {script: 'true'}}}\n  lb:\n    services:\n      b:\n        script: 'true'\n        parameters: {backend: '${web.ipaddress}'}\n",
        location: "8:32", message: "instance 'web' has 2 members; write web[0].ipaddress for one, or web[*].ipaddress for all", code: .ambiguousReference),
    BrokenDeployable(
        name: "member index out of range",
        yaml: "name: x\ninstances:\n  web: {count: 2, services: {s: {script: 'true'}}}\n  lb:\n    services:\n      b:\n        script: 'true'\n        parameters: {backend: '${web[2].ipaddress}'}\n",
        location: "8:32", message: "instance 'web' has 2 members (index 0…1), not 3", code: .unknownReference),
    BrokenDeployable(
        name: "list reference inside a string",
        yaml: "name: x\ninstances:\n  web: {count: 2, services: {s: {script: 'true'}}}\n  lb:\n    services:\n      b:\n        script: 'true'\n        parameters: {backends: 'list=${web[*].ipaddress}'}\n",
        location: "8:38", message: "${web[*].ipaddress} is a list, so it must be the whole value", code: .invalidValue),
    BrokenDeployable(
        name: "after an unknown service",
        yaml: "name: x\ninstances:\n  db: {services: {mysql: {script: 'true'}}}\n  web:\n    services:\n      app: {script: 'true', after: [db.mysq]}\n",
        location: "6:37", message: "after: db.mysq: instance 'db' has no service 'mysq' (did you mean 'mysql'?)", code: .unknownReference),
    BrokenDeployable(
        name: "cycle through after",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      s: {script: 'true', after: [web.app]}\n  web:\n    services:\n      app: {script: 'true', after: [db.s]}\n",
        location: "5:35", message: "dependency cycle: db -> web -> db", code: .cycle),
    BrokenDeployable(
        name: "self cycle through a published fact",
        yaml: "name: x\ninstances:\n  db:\n    publishes: [{fact: schema, by: setup}]\n    services:\n      setup: {script: 'true'}\n      app: {script: 'true', parameters: {s: '${self.schema}'}}\n",
        location: "7:46", message: "dependency cycle: db -> db", code: .cycle),
    BrokenDeployable(
        name: "parameters in a cycle",
        yaml: "name: x\ninstances:\n  a:\n    services:\n      s: {script: 'true', parameters: {x: '${b.t.y}'}}\n  b:\n    services:\n      t: {script: 'true', parameters: {y: '${a.s.x}'}}\n",
        location: "8:44", message: "parameters refer to each other in a cycle: a.s.x -> b.t.y -> a.s.x", code: .cycle),
    BrokenDeployable(
        name: "published by an unknown service",
        yaml: "name: x\ninstances:\n  db:\n    publishes: [{fact: schema, by: setpu}]\n    services:\n      setup: {script: 'true'}\n",
        location: "4:17", message: "fact 'schema' is published by service 'setpu', which instance 'db' does not have (did you mean 'setup'?)", code: .unknownReference),
    BrokenDeployable(
        name: "service named like a fact",
        yaml: "name: x\ninstances:\n  db:\n    services:\n      hostname: {script: 'true'}\n",
        location: "5:7", message: "service name 'hostname' is also a host fact", code: .invalidName),
    BrokenDeployable(
        name: "unknown type",
        yaml: "name: x\ntypes:\n  small: {provider: local}\ninstances:\n  db:\n    type: smal\n    services: {s: {script: 'true'}}\n",
        location: "6:11", message: "unknown type 'smal' (did you mean 'small'?)", code: .unknownReference),
    BrokenDeployable(
        name: "missing required values, all named",
        yaml: "name: x\nparameters:\n  admin_email: {required: true}\n  api_key: {required: true, description: the API key}\ninstances:\n  db: {services: {s: {script: 'true'}}}\n",
        location: "3:16", message: "missing required parameters: admin_email, api_key; supply each with --set NAME=VALUE", code: .missingRequired),
]

@Suite("Deployable corpus")
struct DeployableCorpusTests {
    @Test(arguments: brokenDeployables)
    func reportsTheExpectedError(_ broken: BrokenDeployable) {
        let report = DeployableLoader.validate(yaml: broken.yaml, file: "broken.yml", readFile: { _ in nil })
        #expect(!report.isValid)
        let matching = report.errors.filter { $0.message.contains(broken.message) }
        #expect(matching.count == 1, "errors were: \(report.errors)")
        guard let error = matching.first else { return }
        #expect(error.code == broken.code)
        #expect(error.location.map { "\($0.line):\($0.column)" } == broken.location, "\(error)")
        #expect(error.description.hasPrefix("broken.yml:\(broken.location): error: "))
    }

    @Test func cycleNotesNameEveryEdgeWithItsLocation() throws {
        let broken = try #require(brokenDeployables.first { $0.name == "cycle through after" })
        let report = DeployableLoader.validate(yaml: broken.yaml, file: "c.yml", readFile: { _ in nil })
        let cycle = try #require(report.errors.first { $0.code == .cycle })
        #expect(cycle.notes.map(\.message) == ["db.s runs after web.app", "web.app runs after db.s"])
        #expect(cycle.notes.compactMap(\.location).map(\.line) == [5, 8])
    }

    @Test func missingRequiredValuesAreSuppliedBySetOrEnvironment() {
        let yaml = "name: x\nparameters:\n  admin_email: {required: true}\n  api_key: {required: true}\ninstances:\n  db: {services: {s: {script: 'true'}}}\n"
        let partly = DeployableLoader.validate(yaml: yaml, file: "d.yml", settings: [("admin_email", "ops@example.com")])
        #expect(partly.errors.map(\.message) == ["missing required parameter: api_key; supply each with --set NAME=VALUE or in an environment file (--env NAME)"])
        let environment = (name: "prod", file: "environments/prod.yml", text: "parameters:\n  api_key: k-123\n")
        let full = DeployableLoader.validate(yaml: yaml, file: "d.yml", environment: environment, settings: [("admin_email", "ops@example.com")])
        #expect(full.isValid, "\(full.errors)")
        let parameter = full.deployable?.instance("db")?.service("s")?.parameter("api_key")
        #expect(parameter?.value.origin.layer == .environment)
        #expect(parameter?.value.value == .literal(.string("k-123")))
    }

    @Test func setOfAnUnknownParameterIsAnError() {
        let yaml = "name: x\nparameters: {token: {required: true}}\ninstances:\n  db: {services: {s: {script: 'true'}}}\n"
        let report = DeployableLoader.validate(yaml: yaml, file: "d.yml", settings: [("token", "t"), ("tokn", "t")])
        #expect(report.errors.map(\.code) == [.unknownSetting])
        #expect(report.errors.first?.message.contains("(did you mean 'token'?)") == true)
    }
}
