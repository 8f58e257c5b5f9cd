import Conductor
import Foundation
import Mesh
import Testing

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let exampleFile = repositoryRoot.appendingPathComponent("examples/webapp/deployable.yml").path

private func member(_ instance: String, _ index: Int? = nil) -> MemberID { MemberID(instance: instance, index: index) }

private func facts(_ address: String) -> MeshValue { .map(["ipaddress": .string(address), "hostname": .string("h")]) }

@Suite("Deployable resolver")
struct DeployableResolverTests {
    @Test func theExampleValidatesWithAndWithoutItsEnvironment() throws {
        for environment in [nil, "dev"] {
            let report = DeployableLoader.load(file: exampleFile, environment: environment)
            #expect(report.isValid, "\(report.errors)")
            let plan = try #require(report.plan)
            #expect(plan.order == ["db", "web", "lb"])
            #expect(plan.members.map(\.member.description) == ["db", "web[0]", "web[1]", "lb"])
            #expect(plan.secrets == [SecretID("db.server.password"): SecretSpec(length: 24)])
            // The scripts were read from the files next to the deployable.
            #expect(plan.member(member("db"))?.services.first?.script.contains("python3") == true)
        }
    }

    @Test func lateFactsResolveStepByStepAndWaitsNameTheirSource() throws {
        let plan = try #require(DeployableLoader.load(file: exampleFile).plan)
        var known = KnownValues()

        // Nothing known: db waits for its own address and its secret; web for db.
        var state = plan.resolve(with: known)
        #expect(state[member("db")] == .waiting([.fact(member("db"), "ipaddress"), .secret(SecretID("db.server.password"))]))
        #expect(state[member("web", 1)] == .waiting([
            .fact(member("db"), "ipaddress"), .fact(member("web", 1), "ipaddress"),
            .completion(member("db"), service: "server"), .secret(SecretID("db.server.password")),
        ]))

        known.secrets = plan.generateSecrets()
        let password = try #require(known.secrets[SecretID("db.server.password")])
        #expect(password.count == 24)
        known.facts[member("db")] = facts("127.0.0.2")
        state = plan.resolve(with: known)
        guard case .ready(let dbServices) = state[member("db")] else { Issue.record("db not ready: \(String(describing: state[member("db")]))"); return }
        #expect(dbServices[0].parameters["listen"] == .string("127.0.0.2"))
        #expect(dbServices[0].parameters["port"] == .int(15432))
        #expect(dbServices[0].maskedParameters["password"] == "********")
        #expect(state[member("web", 0)] == .waiting([.fact(member("web", 0), "ipaddress"), .completion(member("db"), service: "server")]))

        known.markCompleted(member("db"), service: "server")
        known.facts[member("web", 0)] = facts("127.0.0.3")
        state = plan.resolve(with: known)
        guard case .ready(let webServices) = state[member("web", 0)] else { Issue.record("web[0] not ready"); return }
        let app = webServices[0]
        #expect(app.parameters["db_host"] == .string("127.0.0.2"))
        #expect(app.parameters["db_port"] == .int(15432))
        #expect(app.parameters["db_password"] == .string(password))
        #expect(app.secretParameters == ["db_password"])
        #expect(app.spec.environment["db_port"] == "15432")
        // web[1]'s own address has not arrived: it alone still waits.
        #expect(state[member("web", 1)] == .waiting([.fact(member("web", 1), "ipaddress")]))
        // The load balancer needs every web address and every web member to finish.
        guard case .waiting(let lbWaits) = state[member("lb")] else { Issue.record("lb should wait"); return }
        #expect(lbWaits.compactMap(\.source).contains(member("web", 1)))

        known.facts[member("web", 1)] = facts("127.0.0.4")
        known.facts[member("lb")] = facts("127.0.0.5")
        known.markCompleted(member("web", 0), service: "app")
        known.markCompleted(member("web", 1), service: "app")
        state = plan.resolve(with: known)
        guard case .ready(let lbServices) = state[member("lb")] else { Issue.record("lb not ready: \(String(describing: state[member("lb")]))"); return }
        #expect(lbServices[0].parameters["backends"] == .list([.string("127.0.0.3"), .string("127.0.0.4")]))
        #expect(lbServices[0].parameters["backend_port"] == .int(18080))
        #expect(lbServices[0].spec.environment["backends"] == #"["127.0.0.3","127.0.0.4"]"#)
    }

    @Test func interpolationAndIndexedMembers() throws {
        let yaml = """
            name: chain
            instances:
              web:
                count: 3
                services:
                  app: {script: 'true', parameters: {port: 8080}}
              monitor:
                services:
                  check:
                    script: 'true'
                    parameters:
                      first: 'http://${web[0].ipaddress}:${web[0].app.port}/health'
                      last: {ref: 'web[2].hostname'}
                      ports: ${web[*].app.port}
            """
        let plan = try #require(DeployableLoader.validate(yaml: yaml, file: "c.yml").plan)
        // Facts from boot do not order configuration: nothing waits for web to finish.
        #expect(plan.order == ["web", "monitor"])
        var known = KnownValues()
        for index in 0..<3 { known.facts[member("web", index)] = .map(["ipaddress": .string("10.0.0.\(index)"), "hostname": .string("web\(index)")]) }
        known.facts[member("monitor")] = facts("10.0.1.1")
        guard case .ready(let services) = plan.resolve(with: known)[member("monitor")] else { Issue.record("monitor not ready"); return }
        #expect(services[0].parameters["first"] == .string("http://10.0.0.0:8080/health"))
        #expect(services[0].parameters["last"] == .string("web2"))
        #expect(services[0].parameters["ports"] == .list([.int(8080), .int(8080), .int(8080)]))
        #expect(plan.member(member("monitor"))?.requirements == [
            .fact(member("web", 0), "ipaddress"), .fact(member("web", 2), "hostname"),
        ])
    }

    @Test func orderFollowsAfterAndPublishedFactsNotFileOrder() throws {
        let yaml = """
            name: ordered
            instances:
              app:
                services:
                  run: {script: 'true', after: [cache], parameters: {schema: '${db.schema}'}}
              cache:
                services:
                  start: {script: 'true'}
              db:
                publishes: [{fact: schema, by: migrate}, role]
                services:
                  migrate: {script: 'true'}
            """
        let plan = try #require(DeployableLoader.validate(yaml: yaml, file: "o.yml").plan)
        #expect(plan.order == ["cache", "db", "app"])
        #expect(plan.member(member("app"))?.requirements == [
            .fact(member("db"), "custom.schema"), .completion(member("cache"), service: "start"),
        ])
        let edges = plan.graph.edges.filter { $0.from == "app" }.map(\.explanation)
        #expect(edges.contains("app.run.schema uses db's fact custom.schema, published after db.migrate runs"))
    }

    @Test func environmentOverlayTypesAndZonesFollowTheHierarchy() throws {
        let yaml = """
            name: layered
            parameters:
              log_level: info
              region: none
            types:
              big: {count: 2, parameters: {memory: 4096, log_level: warn}}
            zones:
              eu: {parameters: {region: eu-west}}
            instances:
              web:
                type: big
                parameters: {memory: 2048}
                services:
                  app: {script: 'true', parameters: {port: 80}}
            """
        let overlay = """
            instances:
              web:
                zone: eu
                count: 3
                services:
                  app:
                    parameters: {port: 8080}
            """
        let report = DeployableLoader.validate(
            yaml: yaml, file: "d.yml", environment: (name: "prod", file: "environments/prod.yml", text: overlay))
        #expect(report.isValid, "\(report.errors)")
        let web = try #require(report.deployable?.instance("web"))
        #expect(web.count.value == 3)
        #expect(web.count.origin == Origin(layer: .environment, location: FileLocation(file: "environments/prod.yml", line: 4, column: 12)))
        #expect(web.count.overridden.map(\.layer) == [.type, .builtin])
        let app = try #require(web.service("app"))
        // instance beats type; type beats defaults; zone beats defaults; environment beats instance.
        #expect(app.parameter("memory")?.value.value == .literal(.int(2048)))
        #expect(app.parameter("memory")?.value.overridden.map(\.layer) == [.type])
        #expect(app.parameter("log_level")?.value.value == .literal(.string("warn")))
        #expect(app.parameter("log_level")?.value.origin.layer == .type)
        #expect(app.parameter("region")?.value.value == .literal(.string("eu-west")))
        #expect(app.parameter("region")?.value.origin.layer == .zone)
        #expect(app.parameter("port")?.value.origin.location?.description == "environments/prod.yml:7:28")

        let explained = try #require(report.deployable?.explain().first { $0.path == "web.app.port" })
        #expect(explained.value == "8080")
        #expect(explained.origin.description == "environments/prod.yml:7:28 (environment)")
        #expect(explained.overridden.map(\.description) == ["d.yml:14:48 (instance)"])
    }

    @Test func environmentCannotInventInstances() {
        let yaml = "name: x\ninstances:\n  web: {services: {s: {script: 'true'}}}\n"
        let report = DeployableLoader.validate(
            yaml: yaml, file: "d.yml", environment: (name: "dev", file: "environments/dev.yml", text: "instances:\n  wbe: {count: 2}\n"))
        #expect(report.errors.map(\.description) == [
            "environments/dev.yml:2:3: error: the environment overrides instance 'wbe', which the deployable does not define (did you mean 'web'?)",
        ])
    }

    @Test func secretsAreMaskedInEveryPrintableForm() throws {
        let report = DeployableLoader.load(file: exampleFile)
        let deployable = try #require(report.deployable)
        let password = try #require(deployable.explain().first { $0.path == "db.server.password" })
        #expect(password.value == "<secret, 24 characters>")
        let plan = try #require(report.plan)
        var known = KnownValues(secrets: [SecretID("db.server.password"): "hunter2hunter2hunter2abc"])
        known.facts[member("db")] = facts("127.0.0.2")
        guard case .ready(let services) = plan.resolve(with: known)[member("db")] else { Issue.record("db not ready"); return }
        #expect(!services[0].maskedParameters.values.contains { $0.contains("hunter2") })
    }

    @Test func secretGenerationUsesTheRequestedLengthAndAlphabet() {
        let secret = SecretSpec(length: 40).generate()
        #expect(secret.count == 40)
        #expect(secret.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
        #expect(SecretSpec(length: 40).generate() != secret)
    }
}
