import AMQPClient
import Agent
import Foundation
import Mesh
import MeshClient
import Testing

/// The agent on a real bus: the embedded broker on a loopback port 0, and RabbitMQ when
/// CONDUCTOR_RABBITMQ_URL is set. Every wait is bounded.
@Suite("Agent end to end", .timeLimit(.minutes(2)))
struct EndToEndAgentTests {
    static func withBusAndAgent(
        _ kind: TestBus.Kind, prefix: String, facts: [String: String] = ["role.json": #"{"role": "web"}"#],
        _ body: @Sendable (TestBus, AgentService, MeshConsole, TemporaryDirectory) async throws -> Void
    ) async throws {
        let bus = try await TestBus.start(kind)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (name, content) in facts { try directory.write("facts.d/" + name, content) }
        let console = try await bus.console()
        let watch = try await console.watchHeartbeats()
        let configuration = try bus.agentConfiguration(instance: uniqueInstance(prefix), state: directory)
        do {
            try await withAgent(configuration) { agent in
                // Ready once its first heartbeat is out: its queues exist by then.
                let name = agent.name
                let heartbeat = try await watch.next(timeout: .seconds(10)) { $0.name == name }
                #expect(heartbeat != nil, "no heartbeat from \(name)")
                try await body(bus, agent, console, directory)
            }
        } catch {
            try? await console.close()
            await bus.stop()
            throw error
        }
        _ = try? await console.deleteJobInbox(of: AgentName(instance: configuration.instanceID!))
        try? await console.close()
        await bus.stop()
    }

    @Test(arguments: TestBus.kinds)
    func heartbeatCarriesAttributesAndEpoch(_ kind: TestBus.Kind) async throws {
        let bus = try await TestBus.start(kind)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let console = try await bus.console()
        let watch = try await console.watchHeartbeats()
        let configuration = try bus.agentConfiguration(instance: uniqueInstance("hb"), state: directory)
        for expectedEpoch in [Int64(1), 2] {
            try await withAgent(configuration) { agent in
                let name = agent.name
                let info = try await watch.next(timeout: .seconds(10)) { $0.name == name && $0.epoch == expectedEpoch }
                let heartbeat = try #require(info)
                #expect(heartbeat.heartbeatInterval == 1)
                #expect(heartbeat.attributes["hostname"]?.stringValue?.isEmpty == false)
                #expect(heartbeat.timestamp > 1_600_000_000_000_000_000)
            }
        }
        _ = try? await console.deleteJobInbox(of: AgentName(instance: configuration.instanceID!))
        try await console.close()
        await bus.stop()
    }

    @Test(arguments: TestBus.kinds)
    func queryByPredicateFindsTheAgentAndOnlyWhenItMatches(_ kind: TestBus.Kind) async throws {
        try await Self.withBusAndAgent(kind, prefix: "query") { _, agent, console, _ in
            let name = agent.name.description
            let schemaID = MeshSchema.hostClassID
            let byRole = try Mesh.Predicate.parse(cli: "custom.role=web, has:hostname")
            let answers = try await console.query(QueryRequest(what: .object, schemaID: schemaID, where: byRole), timeout: .seconds(2), expectedAgents: nil)
            let mine = answers.objects.filter { $0.objectID.agentName == name }
            #expect(mine.count == 1)
            #expect(mine.first?.values["custom"]?[path: "role"] == .string("web"))
            #expect(mine.first?.values["sshd"]?[path: "port"]?.intValue != nil)
            #expect(mine.first?.objectID.agentEpoch == agent.epoch)

            // Broadcast with no match: this agent stays silent.
            let none = try await console.query(QueryRequest(what: .object, where: try Mesh.Predicate.parse(cli: "custom.role=db")), timeout: .milliseconds(700))
            #expect(!none.agents.contains(name))

            // Direct with no match: the agent answers with an empty list.
            let direct = try await console.query(QueryRequest(what: .object, where: try Mesh.Predicate.parse(cli: "custom.role=db")), agent: agent.name, timeout: .seconds(5))
            #expect(direct.replies.count == 1)
            #expect(direct.replies.first?.body == .list([]))

            // The schema, with the custom fact described.
            let schema = try await console.query(QueryRequest(what: .schema), agent: agent.name, timeout: .seconds(5))
            let classes = try #require(try schema.replies.first?.decodeBody([SchemaClass].self))
            #expect(classes.first?.property(named: "custom.role")?.type == .string)
            #expect(classes.first?.property(named: "memory_total") != nil)
        }
    }

    @Test(arguments: TestBus.kinds)
    func locateAnswersOnlyWhenAttributesMatch(_ kind: TestBus.Kind) async throws {
        try await Self.withBusAndAgent(kind, prefix: "locate") { _, agent, console, _ in
            let name = agent.name
            let found = try await console.locate(where: .compare(.eq, .property("_instance"), .literal(.string(name.instance))), timeout: .seconds(5), expectedAgents: 1)
            #expect(found.map(\.name) == [name])
            #expect(found.first?.attributes["custom"]?[path: "role"] == .string("web"))
            let notFound = try await console.locate(where: try Mesh.Predicate.parse(cli: "_instance=\(name.instance),custom.role=db"), timeout: .milliseconds(700))
            #expect(notFound.isEmpty)
        }
    }

    @Test(arguments: TestBus.kinds)
    func jobRunsServicesInOrderWithParameters(_ kind: TestBus.Kind) async throws {
        try await Self.withBusAndAgent(kind, prefix: "job") { _, agent, console, directory in
            let out = directory.path + "/order.txt"
            let job = ConfigurationJob(jobID: "job-\(UUID().uuidString)", deployment: "d1", services: [
                ServiceSpec(name: "db", script: "echo \"db $db_port $CONDUCTOR_PARAM_DB_PORT $CONDUCTOR_SERVICE\" >> \(out); echo configured-db", parameters: ["db_port": 5432]),
                ServiceSpec(name: "web", script: "echo \"web $db_host $CONDUCTOR_JOB_ID\" >> \(out); echo oops >&2", parameters: ["db_host": "10.0.0.7"]),
            ])
            let result = try await Self.sendJob(job, to: agent.name, console: console)
            #expect(result.status == .succeeded)
            #expect(result.services.map(\.name) == ["db", "web"])
            #expect(result.services.first?.stdout == "configured-db\n")
            #expect(result.services.last?.stderr == "oops\n")
            #expect(directory.read("order.txt") == "db 5432 5432 db\nweb 10.0.0.7 \(job.jobID)\n")

            // A failing service stops the job; later services are not run.
            let failing = ConfigurationJob(jobID: "job-\(UUID().uuidString)", services: [
                ServiceSpec(name: "a", script: "exit 3"),
                ServiceSpec(name: "b", script: "touch \(directory.path)/b-ran"),
            ])
            let failed = try await Self.sendJob(failing, to: agent.name, console: console)
            #expect(failed.status == .failed)
            #expect(failed.services.map(\.exitCode) == [3])
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/b-ran"))

            // A timeout for the whole job.
            let slow = ConfigurationJob(jobID: "job-\(UUID().uuidString)", services: [ServiceSpec(name: "slow", script: "sleep 20")], timeoutSeconds: 0.5)
            let timedOut = try await Self.sendJob(slow, to: agent.name, console: console)
            #expect(timedOut.status == .timedOut)
        }
    }

    @Test(arguments: TestBus.kinds)
    func jobSentWhileTheAgentIsDownRunsWhenItStarts(_ kind: TestBus.Kind) async throws {
        let bus = try await TestBus.start(kind)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let console = try await bus.console()
        let instance = uniqueInstance("late")
        let name = try AgentName(instance: instance)
        let replyQueue = try await console.declareReplyQueue()
        let job = ConfigurationJob(jobID: "late-\(UUID().uuidString)", services: [ServiceSpec(name: "s", script: "echo ran-late")])
        try await console.sendJob(job, to: name, replyQueue: replyQueue, correlationID: "c-late")
        let configuration = try bus.agentConfiguration(instance: instance, state: directory)
        let replies = try await withAgent(configuration) { _ in
            try await console.collect(replyQueue: replyQueue, correlationID: "c-late", timeout: .seconds(20)) { !$0.isEmpty }
        }
        let result = try #require(try replies.first?.decodeBody(MethodResponse.self).decodeArguments(JobResult.self))
        #expect(result.status == .succeeded)
        #expect(result.services.first?.stdout == "ran-late\n")
        try await console.deleteJobInbox(of: name)
        try await console.close()
        await bus.stop()
    }

    @Test(arguments: TestBus.kinds)
    func duplicateJobRunsOnceEvenAcrossRestarts(_ kind: TestBus.Kind) async throws {
        let bus = try await TestBus.start(kind)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let console = try await bus.console()
        let watch = try await console.watchHeartbeats()
        let configuration = try bus.agentConfiguration(instance: uniqueInstance("dup"), state: directory)
        let job = ConfigurationJob(jobID: "dup-\(UUID().uuidString)", services: [ServiceSpec(name: "count", script: "echo run >> \(directory.path)/count.txt")])
        for round in 0..<2 {
            try await withAgent(configuration) { agent in
                let name = agent.name
                _ = try await watch.next(timeout: .seconds(10)) { $0.name == name }
                let first = try await Self.sendJob(job, to: agent.name, console: console)
                #expect(first.status == .succeeded)
                #expect(first.replayed == (round == 0 ? nil : true))
                let second = try await Self.sendJob(job, to: agent.name, console: console)
                #expect(second.replayed == true)
                #expect(second.services == first.services)
            }
        }
        #expect(directory.read("count.txt") == "run\n")
        try await console.deleteJobInbox(of: AgentName(instance: configuration.instanceID!))
        try await console.close()
        await bus.stop()
    }

    @Test(arguments: TestBus.kinds)
    func runFromTheTrustedUserOnlyAndUnknownMethods(_ kind: TestBus.Kind) async throws {
        try await Self.withBusAndAgent(kind, prefix: "run") { bus, agent, console, directory in
            let marker = directory.path + "/intruder-ran"
            let run = try MethodRequest(methodName: MeshMethod.run, encoding: RunRequest(command: .argv(["/bin/sh", "-c", "touch \(marker); echo hi"])))

            let trusted = try #require(try await console.call(run, on: agent.name, timeout: .seconds(10)))
            #expect(trusted.opcode == .methodResponse)
            let result = try trusted.decodeBody(MethodResponse.self).decodeArguments(RunResult.self)
            #expect(result.exitCode == 0 && result.stdout == "hi\n")
            // Everything the agent sends carries its login, which the broker vouched for.
            #expect(trusted.userID == (try AMQPConnectionConfiguration(url: bus.agentURL)).username)
            try FileManager.default.removeItem(atPath: marker)

            // A valid user that is not the trusted one (the broker vouches for user_id).
            // RabbitMQ here only has guest, which is the trusted user there: skipped.
            if let intruderURL = bus.intruderURL {
                let intruder = try await bus.console(intruderURL)
                let refused = try #require(try await intruder.call(run, on: agent.name, timeout: .seconds(10)))
                #expect(refused.exceptionBody?.code == .forbidden)
                #expect(refused.exceptionBody?.text.contains("intruder") == true)
                try await intruder.close()
            }
            // No user_id at all: refused on both brokers.
            var anonymous = try MeshMessage(opcode: .methodRequest, encoding: run)
            anonymous.userID = nil
            let replies = try await console.request(anonymous, exchange: QMF.directExchange, routingKey: agent.name.description, timeout: .seconds(10)) { !$0.isEmpty }
            #expect(replies.first?.exceptionBody?.code == .forbidden)
            #expect(!FileManager.default.fileExists(atPath: marker))

            let unknown = try #require(try await console.call(MethodRequest(methodName: "reboot"), on: agent.name, timeout: .seconds(10)))
            #expect(unknown.exceptionBody?.code == .notFound)
            #expect(unknown.exceptionBody?.text == "method 'reboot' is unknown (known: apply_job, refresh, run)")

            let invalid = try #require(try await console.call(MethodRequest(methodName: MeshMethod.run, arguments: ["timeout_seconds": 5]), on: agent.name, timeout: .seconds(10)))
            #expect(invalid.exceptionBody?.code == .invalidRequest)
            #expect(invalid.exceptionBody?.text.contains("command") == true)

            let refresh = try #require(try await console.call(MethodRequest(methodName: MeshMethod.refresh), on: agent.name, timeout: .seconds(10)))
            #expect(refresh.body[path: "_arguments.values.custom.role"] == .string("web"))
        }
    }

    /// A run request that reaches the agent after its deadline (the agent was stopped, or
    /// slow to read) is answered 408 and not run: the sender has given up and may retry.
    @Test(arguments: TestBus.kinds)
    func runReadAfterItsDeadlineIsNotRun(_ kind: TestBus.Kind) async throws {
        try await Self.withBusAndAgent(kind, prefix: "late") { bus, agent, console, directory in
            let marker = directory.path + "/late-ran"
            let run = try MethodRequest(methodName: MeshMethod.run, encoding: RunRequest(command: .argv(["touch", marker])))
            // As `conductor run` sends it, but with a deadline already over.
            var late = try MeshMessage(opcode: .methodRequest, encoding: run)
            late.userID = console.userID
            late.expiration = .seconds(10)
            late.extraHeaders["conductor.deadline"] = .int(RequestSigner.now() - 2000)
            let refused = try await console.request(late, exchange: QMF.directExchange, routingKey: agent.name.description, timeout: .seconds(10)) { !$0.isEmpty }
            #expect(refused.first?.exceptionBody?.code == .timeout, "\(refused.map(\.body))")
            #expect(refused.first?.exceptionBody?.text.contains("it was not run") == true)
            #expect(!FileManager.default.fileExists(atPath: marker))

            var timely = late
            timely.extraHeaders["conductor.deadline"] = .int(RequestSigner.now() + 10_000)
            let ran = try await console.request(timely, exchange: QMF.directExchange, routingKey: agent.name.description, timeout: .seconds(10)) { !$0.isEmpty }
            #expect(ran.first?.opcode == .methodResponse, "\(ran.map(\.body))")
            #expect(FileManager.default.fileExists(atPath: marker))
        }
    }

    /// Stopping mid-job: the job is killed after the grace period and reported `interrupted`.
    @Test func shutdownPastTheGracePeriodReportsInterrupted() async throws {
        let bus = try await TestBus.start(.embedded)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let console = try await bus.console()
        let watch = try await console.watchHeartbeats()
        let configuration = try bus.agentConfiguration(instance: uniqueInstance("stop"), state: directory, grace: .milliseconds(300))
        let replyQueue = try await console.declareReplyQueue()
        let job = ConfigurationJob(jobID: "stop-\(UUID().uuidString)", services: [ServiceSpec(name: "long", script: "echo started; sleep 30")])
        let started = ContinuousClock.now
        try await withAgent(configuration) { agent in
            let name = agent.name
            _ = try await watch.next(timeout: .seconds(10)) { $0.name == name }
            try await console.sendJob(job, to: agent.name, replyQueue: replyQueue, correlationID: "c-stop")
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(started.duration(to: .now) < .seconds(10))
        let replies = try await console.collect(replyQueue: replyQueue, correlationID: "c-stop", timeout: .seconds(5)) { !$0.isEmpty }
        let result = try #require(try replies.first?.decodeBody(MethodResponse.self).decodeArguments(JobResult.self))
        #expect(result.status == .interrupted)
        #expect(result.services.first?.stdout == "started\n")
        // Recorded: a redelivery would not run it again.
        let store = try AgentStateStore(directory: configuration.stateDirectory)
        #expect(store.finishedJob(job.jobID)?.status == .interrupted)
        try await console.close()
        await bus.stop()
    }

    static func sendJob(_ job: ConfigurationJob, to agent: AgentName, console: MeshConsole, timeout: Duration = .seconds(20)) async throws -> JobResult {
        let replyQueue = try await console.declareReplyQueue()
        let correlation = UUID().uuidString
        try await console.sendJob(job, to: agent, replyQueue: replyQueue, correlationID: correlation)
        let replies = try await console.collect(replyQueue: replyQueue, correlationID: correlation, timeout: timeout) { !$0.isEmpty }
        let reply = try #require(replies.first, "no answer to job \(job.jobID)")
        #expect(reply.opcode == .methodResponse, "\(reply.body)")
        return try reply.decodeBody(MethodResponse.self).decodeArguments(JobResult.self)
    }
}
