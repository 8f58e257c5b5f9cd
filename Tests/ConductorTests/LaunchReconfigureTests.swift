import Conductor
import Foundation
import Mesh
import Testing

/// Re-configuration (Audrey fills references "as facts arrive"): a source fact that
/// changes after its consumer was configured gives that consumer a new job, recorded
/// first with a new id and an audit entry; a member whose parameters did not change
/// gets nothing.
@Suite(.timeLimit(.minutes(1))) struct LaunchReconfigureTests {
    static let deployable = """
        name: reconf
        instances:
          db:
            publishes: [{fact: version, by: server}]
            services:
              server:
                script: test -f "$CONDUCTOR_FACTS_DIR/version.txt" || echo version=1 > "$CONDUCTOR_FACTS_DIR/version.txt"
          web:
            services:
              app:
                script: echo "$db_version" > "$CONDUCTOR_WORK_DIR/seen.txt"
                parameters:
                  db_version: ${db.version}
          cache:
            services:
              store:
                script: echo "$db_host" > "$CONDUCTOR_WORK_DIR/seen.txt"
                parameters:
                  db_host: ${db.ipaddress}
        """

    @Test(arguments: LaunchBusKind.all) func aChangedSourceFactReconfiguresOnlyItsConsumers(bus: LaunchBusKind) async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try Self.deployable.write(toFile: directory + "/reconf.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: bus == .embedded ? (127, 61, 30) : (127, 61, 31), bus: bus) { harness in
            let launcher = harness.launcher()
            let result = try await launcher.launch(LaunchRequest(file: directory + "/reconf.yml"))
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            let work = harness.stateDirectory + "/deployments/reconf@default"
            #expect(try String(contentsOfFile: work + "/web/work/seen.txt", encoding: .utf8) == "1\n")

            // Nothing changed: nothing is sent.
            #expect(try await launcher.reconfigure(deployment: "reconf", environment: "default").isEmpty)

            // The db's custom fact changes after web was configured.
            try "version=2\n".write(toFile: work + "/db/facts.d/version.txt", atomically: true, encoding: .utf8)

            // While another launch holds the deployment, the pass sends nothing.
            let other = try await harness.store.acquireLaunchLock(
                deployment: "reconf", environment: "default", holder: .thisProcess(), lease: .seconds(60), actor: stateTestActor)
            #expect(try await launcher.reconfigure(deployment: "reconf", environment: "default").isEmpty)
            let held = try await Self.instances(harness.store)
            #expect(try await harness.store.jobs(instanceID: try #require(held["web"]).id).count == 1)
            try await harness.store.releaseLaunchLock(other, actor: stateTestActor)

            let done = try await launcher.reconfigure(deployment: "reconf", environment: "default")
            #expect(done.map(\.member) == ["web"])
            #expect(done.first?.changed == ["app.db_version"])
            #expect(done.first?.succeeded == true)
            #expect(try String(contentsOfFile: work + "/web/work/seen.txt", encoding: .utf8) == "2\n")

            let instances = try await Self.instances(harness.store)
            let webJobs = try await harness.store.jobs(instanceID: try #require(instances["web"]).id)
            #expect(webJobs.map(\.name).sorted() == ["configure", "reconfigure-2"])
            #expect(Set(webJobs.map(\.id)).count == 2)
            #expect(webJobs.allSatisfy { $0.state == .succeeded })
            let newJob = try #require(webJobs.first { $0.name == "reconfigure-2" })
            #expect(try newJob.payload.decode(as: ConfigurationJob.self).services.first?.parameters["db_version"] == .string("2"))
            #expect(try await harness.store.jobs(instanceID: try #require(instances["cache"]).id).count == 1)
            #expect(try await harness.store.jobs(instanceID: try #require(instances["db"]).id).count == 1)
            #expect(try #require(instances["web"]).state == .configured)
            let audit = try await harness.store.auditTrail(deployment: "reconf", environment: "default", limit: 500)
            let entry = try #require(audit.first { $0.action == "instance.reconfigure" })
            #expect(entry.subject == "instance:\(try #require(instances["web"]).id.uuidString.lowercased())")
            #expect(audit.contains { $0.action == "job.record" && $0.subject == "job:\(newJob.id)" })

            // Settled: the next pass sends nothing.
            #expect(try await launcher.reconfigure(deployment: "reconf", environment: "default").isEmpty)
            try await launcher.terminate(deployment: "reconf", environment: "default")
        }
    }

    /// A coordinator that died after recording (and maybe sending) a re-configuration job:
    /// `fwd` sends that job again under its id, and does not settle for the first one.
    @Test(arguments: LaunchBusKind.all) func rollForwardResendsAnInterruptedReconfiguration(bus: LaunchBusKind) async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try Self.deployable.write(toFile: directory + "/reconf.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: bus == .embedded ? (127, 61, 32) : (127, 61, 33), bus: bus) { harness in
            let launcher = harness.launcher()
            let result = try await launcher.launch(LaunchRequest(file: directory + "/reconf.yml"))
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            let work = harness.stateDirectory + "/deployments/reconf@default"
            #expect(try String(contentsOfFile: work + "/web/work/seen.txt", encoding: .utf8) == "1\n")

            // What `sendReconfiguration` records before it sends, then the coordinator is gone.
            let web = try #require(try await Self.instances(harness.store)["web"])
            let first = try #require(try await harness.store.jobs(instanceID: web.id).first)
            var job = try first.payload.decode(as: ConfigurationJob.self)
            job.services[0].parameters["db_version"] = .string("2")
            let recorded = try await harness.store.recordJobIntent(
                instanceID: web.id, name: "reconfigure-2", payload: try MeshValue(encoding: job), actor: stateTestActor)
            try await harness.store.transitionInstance(web.id, to: .configuring, providerHandle: nil, address: nil, reason: nil, actor: stateTestActor)

            let rolled = try await harness.launcher().rollForward(deployment: "reconf", environment: "default")
            #expect(rolled.configured, "\(rolled.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(try String(contentsOfFile: work + "/web/work/seen.txt", encoding: .utf8) == "2\n")
            let jobs = try await harness.store.jobs(instanceID: web.id)
            #expect(jobs.map(\.name).sorted() == ["configure", "reconfigure-2"])
            #expect(jobs.first { $0.name == "reconfigure-2" }?.id == recorded.id)
            #expect(jobs.allSatisfy { $0.state == .succeeded })
            #expect(try #require(try await Self.instances(harness.store)["web"]).state == .configured)
            try await launcher.terminate(deployment: "reconf", environment: "default")
        }
    }

    @Test func changedParametersNameServiceAndParameter() {
        let old = [ServiceSpec(name: "app", script: "x", parameters: ["a": .string("1"), "b": .string("1")])]
        let new = [ServiceSpec(name: "app", script: "x", parameters: ["a": .string("2"), "b": .string("1")]), ServiceSpec(name: "extra", script: "y")]
        #expect(Launcher.changedParameters(from: old, to: new) == ["app.a", "extra"])
        #expect(Launcher.changedParameters(from: old, to: old).isEmpty)
    }

    static func instances(_ store: SQLiteStateStore) async throws -> [String: InstanceRecord] {
        let generation = try #require(try await store.generations(deployment: "reconf", environment: "default").last)
        return Dictionary(try await store.instances(generationID: generation.id).map { ($0.member, $0) }, uniquingKeysWith: { a, _ in a })
    }
}
