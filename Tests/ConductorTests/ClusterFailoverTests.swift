import AMQPClient
import Broker
@testable import Conductor
import Foundation
import Mesh
import MeshClient
import ProcessSupport
import TestSupport
import Testing

/// A launch on the three-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh while the
/// node its coordinator and half its agents are connected to goes away: everyone moves to
/// another node, the agents' queues (quorum) are still there, and the launch ends
/// configured with every job run exactly once.
@Suite(
    .serialized, .timeLimit(.minutes(10)),
    .enabled(
        if: RabbitMQEnvironment.clusterUnavailable == nil,
        "needs the RabbitMQ cluster: CONDUCTOR_RABBITMQ_CLUSTER_URLS and CONDUCTOR_RABBITMQ_CLUSTER_MGMT_URLS (scripts/test.sh sets them from scripts/rabbitmq-cluster.sh)"))
struct ClusterFailoverTests {
    static let script = LaunchTests.repository + "/scripts/rabbitmq-cluster.sh"

    /// `scripts/rabbitmq-cluster.sh ARGUMENTS`, bounded.
    @discardableResult
    static func cluster(_ arguments: String...) async throws -> String {
        let result = try await ProcessRunner.run(ProcessRequest(.executable(self.script, arguments: arguments), timeout: .seconds(180)))
        guard result.succeeded else {
            throw LaunchError(.invalidRequest, "rabbitmq-cluster.sh \(arguments.joined(separator: " ")) failed: \(result.stderr.text) \(result.stdout.text)")
        }
        return result.stdout.text
    }

    /// Two tiers of two members: `second` runs after `first`; its jobs go on until the test
    /// has stopped node 1 (the marker file), so they are in flight across the failover.
    /// Every run of a job appends a line to the member's `runs`.
    static func deployable(marker: String) -> String {
        """
        name: failover
        instances:
          first:
            count: 2
            services:
              step:
                script: |
                  mkdir -p "$CONDUCTOR_WORK_DIR"
                  echo run >> "$CONDUCTOR_WORK_DIR/runs"
          second:
            count: 2
            services:
              step:
                after: [first.step]
                parameters:
                  marker: \(marker)
                  peers: ${first[*].ipaddress}
                script: |
                  mkdir -p "$CONDUCTOR_WORK_DIR"
                  echo run >> "$CONDUCTOR_WORK_DIR/runs"
                  i=0
                  while [ ! -e "$marker" ] && [ "$i" -lt 900 ]; do sleep 0.2; i=$((i + 1)); done
                  test -e "$marker"

        """
    }

    struct Connection: Decodable {
        var node: String?
        var user: String?
    }

    /// The bus users with a connection on `node`, as node 3's management API lists them
    /// (its statistics lag a few seconds: polled, bounded).
    static func users(on node: String, management: String, atLeast agents: Int) async throws -> [String] {
        let admin = try BrokerAdminClient(url: management)
        var users: [String] = []
        for _ in 0..<40 {
            let connections = try await admin.call(.GET, "/api/connections", as: [Connection].self)
            users = connections.filter { $0.node == node }.compactMap(\.user)
            if users.filter({ $0.hasPrefix("agent.") }).count >= agents { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        return users
    }

    @Test func aLaunchEndsConfiguredWhenTheNodeOfItsCoordinatorAndHalfItsAgentsGoesAway() async throws {
        let urls = try #require(RabbitMQEnvironment.clusterURLs)
        let management = try #require(RabbitMQEnvironment.clusterManagementURLs)
        let directory = try LaunchHarness.temporaryDirectory()
        let marker = directory + "/node1-stopped"
        let file = directory + "/failover.yml"
        try Self.deployable(marker: marker).write(toFile: file, atomically: true, encoding: .utf8)

        // The coordinator: all three nodes, node 1 first; agents' logins through node 3's
        // management API (node 3 stays up).
        let bus = try await LaunchBus.start(broker: urls.joined(separator: ","), busAdmin: management[2])
        let store = try SQLiteStateStore(path: directory + "/state.sqlite")
        let provider = RotatingProvider(LocalProvider(executable: LaunchHarness.conductorBinary, addressPrefix: (127, 66, 1)))
        let options = LaunchOptions(
            stateDirectory: directory, console: bus.console, agentBrokerURL: bus.agentURL, waitBudget: .seconds(120), jobTimeout: .seconds(120),
            actor: .system, trustedUser: bus.trustedUser, accounts: bus.accounts)
        let node1 = try await Self.cluster("node-name", "1").trimmingCharacters(in: .whitespacesAndNewlines)

        // When the second tier's first job is on its way: note who is on node 1, stop it,
        // then let the jobs finish.
        let failover = Locked<Task<[String], any Error>?>(nil)
        let progress: @Sendable (LaunchEvent) -> Void = { event in
            guard case .configuring(let member, _) = event, member.hasPrefix("second") else { return }
            failover.mutate { task in
                guard task == nil else { return }
                task = Task {
                    let onNode1 = try await Self.users(on: node1, management: management[2], atLeast: 2)
                    try await Self.cluster("stop-node", "1")
                    _ = FileManager.default.createFile(atPath: marker, contents: Data("stopped\n".utf8))
                    return onNode1
                }
            }
        }
        let launcher = Launcher(store: store, providers: [provider], options: options, progress: progress)
        var onNode1: [String] = []
        do {
            let result = try await launcher.launch(LaunchRequest(file: file))
            let stopped = try #require(failover.value, "the second tier was never sent its jobs")
            onNode1 = try await stopped.value
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(FileManager.default.fileExists(atPath: marker))

            // Who was on node 1 when it stopped: the coordinator (its console and its
            // heartbeat watch) and half the agents (the provider put every other one there).
            #expect(onNode1.contains(bus.console.username), "\(onNode1)")
            #expect(onNode1.filter { $0.hasPrefix("agent.") }.count == 2, "\(onNode1)")

            // Every job ran exactly once: one line in each member's runs, one finished job
            // in each agent's records (a second copy of a job was answered from them).
            let status = try #require(try await store.status(deployment: "failover", environment: "default"))
            #expect(status.instances.count == 4)
            #expect(status.instances.allSatisfy { $0.instance.state == .configured && $0.jobs.count == 1 && $0.jobs[0].state == .succeeded })
            let members = directory + "/deployments/failover@default"
            let memberDirectories = try FileManager.default.contentsOfDirectory(atPath: members).sorted()
            #expect(memberDirectories.count == 4, "\(memberDirectories)")
            for member in memberDirectories {
                let runs = (try? String(contentsOfFile: "\(members)/\(member)/work/runs", encoding: .utf8)) ?? ""
                #expect(runs == "run\n", "\(member) ran its job \(runs.split(separator: "\n").count) times")
                let jobs = (try? FileManager.default.contentsOfDirectory(atPath: "\(members)/\(member)/state/jobs")) ?? []
                #expect(jobs.count == 1, "\(member) recorded \(jobs)")
            }

            // A fact query afterwards: every agent answers, over the nodes still up.
            let console = try await MeshConsole.connect(bus.console, answers: .ownLogins)
            let answers = try await console.query(QueryRequest(what: .object), timeout: .seconds(30), expectedAgents: 4)
            try? await console.close()
            #expect(answers.agents.count == 4, "answered: \(answers.agents.sorted())")
        } catch {
            Issue.record("launch across the failover: \(error)")
        }
        _ = try? await launcher.terminate(deployment: "failover", environment: "default")
        await bus.stop()
        _ = try? await failover.value?.value
        // The cluster whole again for whoever comes next.
        try await Self.cluster("start-node", "1")
        // CONDUCTOR_TEST_KEEP keeps the agents' logs and records to look at.
        if ProcessInfo.processInfo.environment["CONDUCTOR_TEST_KEEP"] == nil { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// Hands every other agent the cluster's URLs starting with the second node, so half the
/// agents connect to node 1 and half to node 2.
final class RotatingProvider: InstanceProvider, @unchecked Sendable {
    let inner: LocalProvider
    var name: String { inner.name }

    init(_ inner: LocalProvider) { self.inner = inner }

    func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        var request = request
        let urls = request.brokerURL.split(separator: ",").map(String.init)
        if request.ordinal % 2 == 1, urls.count > 1 {
            request.brokerURL = (urls.dropFirst() + urls.prefix(1)).joined(separator: ",")
        }
        return try await self.inner.start(request)
    }

    func stop(_ handle: InstanceHandle) async throws { try await self.inner.stop(handle) }
    func isAlive(_ handle: InstanceHandle) async -> Bool { await self.inner.isAlive(handle) }
    func locate(instanceID: String) async -> InstanceHandle? { await self.inner.locate(instanceID: instanceID) }
}
