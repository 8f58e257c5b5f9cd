import AMQPClient
import Broker
@testable import Conductor
import Foundation
import Logging
import Mesh
import TestSupport
import Testing

/// End to end: real `conductor agent` processes (the binary built next to the tests) on
/// an embedded broker, each on its own loopback address; every test uses its own /24 so
/// they can run in parallel.
@Suite(.timeLimit(.minutes(1)))
struct LaunchTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test(arguments: LaunchBusKind.all) func webappLaunchesAndEveryReferenceResolves(bus: LaunchBusKind) async throws {
        let third: UInt8 = bus == .embedded ? 1 : 12
        try await LaunchHarness.with(prefix: (127, 61, third), bus: bus) { harness in
            let launcher = harness.launcher()
            let result = try await launcher.launch(LaunchRequest(file: Self.repository + "/examples/webapp/deployable.yml"))
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            let byMember = Dictionary(uniqueKeysWithValues: result.members.map { ($0.member, $0) })
            #expect(byMember["db"]?.address == "127.61.\(third).2")
            let dbAddress = try #require(byMember["db"]?.address)
            for web in ["web[0]", "web[1]"] {
                let app = try #require(byMember[web]?.services.first)
                #expect(app.parameters["db_host"] == dbAddress)
                #expect(app.parameters["db_port"] == "15432")
                #expect(app.parameters["db_password"] == "********")
                #expect(app.parameters["listen"] == byMember[web]?.address)
                #expect(app.exitCode == 0)
                #expect(app.output?.contains("database \(dbAddress):15432 accepted the password") == true)
            }
            let balancer = try #require(byMember["lb"]?.services.first)
            #expect(balancer.parameters["backends"] == "[\"127.61.\(third).3\",\"127.61.\(third).4\"]")
            #expect(balancer.output == "load balancer on 127.61.\(third).5:18000: requests reach all 2 backends in turn")

            // Recorded: one job per member, succeeded; the generation active; an audit trail.
            let status = try #require(try await harness.store.status(deployment: "webapp", environment: "default"))
            #expect(status.deployment.status == .configured)
            #expect(status.activeGeneration?.number == 1)
            #expect(status.instances.count == 4)
            #expect(status.instances.allSatisfy { $0.instance.state == .configured && $0.jobs.count == 1 && $0.jobs[0].state == .succeeded })
            let actions = Set(try await harness.store.auditTrail(deployment: "webapp", environment: "default", limit: 500).map(\.action))
            #expect(actions.isSuperset(of: ["generation.record", "instance.record", "job.record", "generation.activate", "secret.generate"]))

            // The same secret reached the db and both webs: the webs' check above passed with it.
            let ids = status.instances.map { $0.instance.id.uuidString.lowercased() }
            let stopped = try await launcher.terminate(deployment: "webapp", environment: "default")
            #expect(stopped.count == 4)
            for id in ids { #expect(LaunchHarness.processes(carrying: id).isEmpty, "processes of \(id) still running") }
            // A second terminate finds nothing left to stop and is not an error.
            #expect(try await launcher.terminate(deployment: "webapp", environment: "default").isEmpty)
            #expect(try await harness.store.deployment("webapp", environment: "default")?.status == .terminated)
        }
    }

    @Test func aMemberWhoseSourceNeverAppearsIsReportedBlocked() async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try """
            name: never
            instances:
              db:
                publishes: [{fact: version, by: server}]
                services:
                  server:
                    script: "true"
              web:
                services:
                  app:
                    script: "true"
                    parameters:
                      db_version: ${db.version}
            """.write(toFile: directory + "/never.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: (127, 61, 2), waitBudget: .seconds(10)) { harness in
            let result = try await harness.launcher().launch(LaunchRequest(file: directory + "/never.yml"))
            #expect(!result.configured)
            let web = try #require(result.members.first { $0.member == "web" })
            #expect(web.state == "blocked")
            #expect(web.reason?.contains("fact custom.version of db") == true, "\(web.reason ?? "-")")
            #expect(result.members.first { $0.member == "db" }?.state == "configured")
            let status = try #require(try await harness.store.status(deployment: "never", environment: "default"))
            #expect(status.deployment.status == .failed)
            #expect(status.deployment.failureReason?.contains("web: blocked") == true)
            try await harness.launcher().terminate(deployment: "never", environment: "default")
        }
    }

    @Test func aPublishedFactReachesItsConsumer() async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try """
            name: published
            instances:
              db:
                publishes: [{fact: version, by: server}]
                services:
                  server:
                    script: echo version=42 > "$CONDUCTOR_FACTS_DIR/version.txt"
              web:
                services:
                  app:
                    script: test "$db_version" = 42
                    parameters:
                      db_version: ${db.version}
            """.write(toFile: directory + "/published.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: (127, 61, 5), waitBudget: .seconds(10)) { harness in
            let result = try await harness.launcher().launch(LaunchRequest(file: directory + "/published.yml"))
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(result.members.first { $0.member == "web" }?.services.first?.parameters["db_version"] == "42")
            try await harness.launcher().terminate(deployment: "published", environment: "default")
        }
    }

    @Test func anInvalidDeployableIsRefusedBeforeAnythingStarts() async throws {
        let directory = try LaunchHarness.temporaryDirectory()
        try """
            name: cyclic
            instances:
              a:
                services:
                  s: {script: "true", after: [b.t]}
              b:
                services:
                  t: {script: "true", after: [a.s]}
            """.write(toFile: directory + "/cyclic.yml", atomically: true, encoding: .utf8)
        try await LaunchHarness.with(prefix: (127, 61, 3)) { harness in
            let error = await #expect(throws: LaunchError.self) {
                try await harness.launcher().launch(LaunchRequest(file: directory + "/cyclic.yml"))
            }
            #expect(error?.code == .invalid)
            let codes = error?.errors.map(\.code) ?? []
            #expect(codes.contains(.cycle), "\(codes)")
            #expect(harness.provider.starts.value.isEmpty)
            let recorded = try await harness.store.status()
            #expect(recorded.isEmpty)
        }
    }

    /// A coordinator that dies after sending the first job; `rollForward` finishes the
    /// launch with the same instances (no second start) and the job run once.
    @Test func rollForwardAfterACrashDuplicatesNothing() async throws {
        try await LaunchHarness.with(prefix: (127, 61, 4)) { harness in
            let file = Self.repository + "/examples/webapp/deployable.yml"
            let crashed = try await harness.launcher(interruption: RollOutInterruptions.afterSendingJobs(1)).launch(LaunchRequest(file: file))
            #expect(!crashed.configured)
            #expect(harness.provider.starts.value.count == 4)
            let pending = try #require(try await harness.store.pendingWork(deployment: "webapp", environment: "default"))
            #expect(pending.jobsAwaitingResult.count == 1)

            let result = try await harness.launcher().rollForward(deployment: "webapp", environment: "default")
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(harness.provider.starts.value.count == 4, "fwd started an instance again")
            #expect(Set(result.members.map(\.instanceID)) == Set(crashed.members.map(\.instanceID)))

            let status = try #require(try await harness.store.status(deployment: "webapp", environment: "default"))
            #expect(status.instances.count == 4)
            #expect(status.instances.allSatisfy { $0.jobs.count == 1 })
            // The db's agent ran its job once: one finished-job record in its state directory.
            let db = harness.stateDirectory + "/deployments/webapp@default/db/state/jobs"
            #expect(try FileManager.default.contentsOfDirectory(atPath: db).count == 1)
            let dbJob = try #require(status.instances.first { $0.instance.member == "db" }?.jobs.first)
            #expect(dbJob.result?[path: "replayed"] == .bool(true))
            try await harness.launcher().terminate(deployment: "webapp", environment: "default")
        }
    }
}

/// The bus a launch test runs on: a broker the test owns (users `conductor` and `agent`),
/// or the RabbitMQ of `CONDUCTOR_RABBITMQ_URL` (only `guest` there, so the coordinator,
/// the agents and the trusted user are all `guest`).
enum LaunchBusKind: String, Sendable, CustomStringConvertible {
    case embedded
    case rabbitMQ

    static let rabbitMQURL = RabbitMQEnvironment.url
    /// The embedded broker always, RabbitMQ when CONDUCTOR_RABBITMQ_URL is set.
    static var all: [LaunchBusKind] { rabbitMQURL == nil ? [.embedded] : [.embedded, .rabbitMQ] }
    var description: String { rawValue }
}

/// A bus (see LaunchBusKind), a store and a counting local provider, torn down whatever happens.
struct LaunchHarness {
    let broker: BrokerServer?
    let consoleURL: String
    let agentURL: String
    let store: SQLiteStateStore
    let stateDirectory: String
    let provider: CountingProvider
    let waitBudget: Duration

    static func with(
        prefix: (UInt8, UInt8, UInt8), bus: LaunchBusKind = .embedded, waitBudget: Duration = .seconds(20), _ body: (LaunchHarness) async throws -> Void
    ) async throws {
        var broker: BrokerServer?
        let consoleURL: String
        let agentURL: String
        switch bus {
        case .embedded:
            let users = [BrokerUser(name: "conductor", password: "c-secret"), BrokerUser(name: "agent", password: "a-secret")]
            let started = try await TestBroker.start(users: users)
            let port = started.port
            broker = started.server
            consoleURL = "amqp://conductor:c-secret@127.0.0.1:\(port)/%2F"
            agentURL = "amqp://agent:a-secret@127.0.0.1:\(port)/%2F"
        case .rabbitMQ:
            let url = try #require(LaunchBusKind.rabbitMQURL)
            consoleURL = url
            agentURL = url
        }
        let directory = try temporaryDirectory()
        let harness = LaunchHarness(
            broker: broker, consoleURL: consoleURL, agentURL: agentURL, store: try SQLiteStateStore(path: directory + "/state.sqlite"),
            stateDirectory: directory, provider: CountingProvider(LocalProvider(executable: conductorBinary, addressPrefix: prefix)), waitBudget: waitBudget)
        do {
            try await body(harness)
        } catch {
            await harness.stopEverything()
            try? await broker?.shutdown()
            throw error
        }
        await harness.stopEverything()
        try? await broker?.shutdown()
    }

    /// `interruption`: where the roll-out stops as if its coordinator were killed (the test seam).
    func launcher(interruption: RollOutInterruption? = nil) -> Launcher {
        let options = LaunchOptions(
            stateDirectory: self.stateDirectory, console: try! AMQPConnectionConfiguration(url: self.consoleURL),
            agentBrokerURL: self.agentURL, waitBudget: self.waitBudget, jobTimeout: .seconds(30),
            actor: .system)
        return Launcher(store: self.store, providers: [self.provider], options: options, interruption: interruption)
    }

    /// Whatever a failing test left running.
    func stopEverything() async {
        for handle in self.provider.starts.value { try? await self.provider.stop(handle) }
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "conductor-launch-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func processes(carrying instanceID: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "CONDUCTOR_INSTANCE_ID=\(instanceID)" }
        }
    }

    /// The `conductor` binary built next to the test runner.
    static let conductorBinary: String = ConductorBinary.path
}

/// Counts starts, so a test can tell that a roll-forward started nothing twice.
final class CountingProvider: InstanceProvider, @unchecked Sendable {
    let inner: LocalProvider
    let starts = Locked<[InstanceHandle]>([])
    var name: String { inner.name }

    init(_ inner: LocalProvider) { self.inner = inner }

    func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        let handle = try await self.inner.start(request)
        self.starts.mutate { $0.append(handle) }
        return handle
    }

    func stop(_ handle: InstanceHandle) async throws { try await self.inner.stop(handle) }
    func isAlive(_ handle: InstanceHandle) async -> Bool { await self.inner.isAlive(handle) }
    func locate(instanceID: String) async -> InstanceHandle? { await self.inner.locate(instanceID: instanceID) }
}

final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { self.stored = value }
    var value: Value { self.lock.withLock { self.stored } }
    func mutate(_ change: (inout Value) -> Void) { self.lock.withLock { change(&self.stored) } }
}

import Agent

@Test func theIPAddressOverrideReplacesTheInterfaceAddress() {
    let collected = HostFactCollector(sources: FactSources(ipaddressOverride: "127.0.0.9")).collectProperties()
    #expect(collected["ipaddress"] == .string("127.0.0.9"))
    #expect(collected["interfaces"] != nil)
    let plain = HostFactCollector(sources: FactSources()).collectProperties()
    #expect(plain["ipaddress"] != .string("127.0.0.9"))
}

@Test func localAddressesSkipNetworkAndBroadcastHosts() {
    let provider = LocalProvider(executable: "/bin/false")
    #expect(provider.address(ordinal: 0) == "127.0.0.2")
    #expect(provider.address(ordinal: 249) == "127.0.0.251")
    #expect(provider.address(ordinal: 250) == "127.0.1.2")
}

/// The command a README reader runs: embedded broker, local agents, JSON result, exit 0.
@Test(.timeLimit(.minutes(1))) func launchCommandRunsTheExampleOnItsEmbeddedBroker() async throws {
    let state = try LaunchHarness.temporaryDirectory()
    let run = try await CLIProcess.run(
        [
            "launch", LaunchTests.repository + "/examples/webapp/deployable.yml", "--state-dir", state,
            "--local-addresses", "127.61.6", "--exit-when-configured", "--json", "--wait-budget", "20",
        ], timeout: 45)
    #expect(run.status == 0, "\(run.stderr)")
    let result = try JSONDecoder().decode(LaunchResult.self, from: Data(run.stdout.utf8))
    #expect(result.configured)
    #expect(result.members.map(\.address) == ["127.61.6.2", "127.61.6.3", "127.61.6.4", "127.61.6.5"])
    #expect(result.members.allSatisfy { $0.state == "configured" })
    for member in result.members { #expect(LaunchHarness.processes(carrying: member.instanceID).isEmpty) }
}
