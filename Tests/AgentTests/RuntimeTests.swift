import Agent
import Foundation
import Mesh
import Testing

@Suite("Agent runtime units")
struct RuntimeTests {
    @Test func stateStoreKeepsInstanceAndCountsEpochs() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try AgentStateStore(directory: directory.path + "/state")
        let generated = try store.instanceID(explicit: nil, environment: [:])
        #expect(try store.instanceID(explicit: nil, environment: [:]) == generated)
        #expect(try store.instanceID(explicit: nil, environment: ["CONDUCTOR_INSTANCE_ID": "web-1"]) == "web-1")
        #expect(try store.instanceID(explicit: "db-1", environment: ["CONDUCTOR_INSTANCE_ID": "web-1"]) == "db-1")
        #expect(try store.nextEpoch() == 1)
        #expect(try AgentStateStore(directory: directory.path + "/state").nextEpoch() == 2)
    }

    @Test func finishedJobsSurviveAndOddIDsAreHashed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try AgentStateStore(directory: directory.path)
        let odd = "deploy/1 gen:2 " + String(repeating: "x", count: 240)
        for id in ["d1-g2-web", odd] {
            #expect(store.finishedJob(id) == nil)
            let result = JobResult(jobID: id, status: .failed, services: [ServiceResult(name: "a", exitCode: 3, stdout: "o", stderr: "e", durationMilliseconds: 5)])
            try store.recordFinishedJob(result)
            #expect(try AgentStateStore(directory: directory.path).finishedJob(id) == result)
        }
        #expect(FileManager.default.fileExists(atPath: directory.path + "/jobs/d1-g2-web.json"))
    }

    func responder(trusted: String = "conductor") throws -> AgentResponder {
        AgentResponder(name: try AgentName(instance: "web-1"), epoch: 3, trustedUser: trusted, maximumResponseBytes: 200)
    }

    let snapshot = FactSnapshot(values: ["hostname": "web-1", "os": "debian"], refreshedAt: Date(), propertiesRefreshedAt: Date(), schema: MeshSchema.host)

    func request(_ method: MethodRequest, user: String?) throws -> MeshMessage {
        var message = try MeshMessage(opcode: .methodRequest, encoding: method)
        message.replyTo = "reply"
        message.correlationID = "c1"
        message.userID = user
        return message
    }

    @Test func methodsAreCheckedForTrustNamesAndArguments() throws {
        let responder = try self.responder()
        let info = responder.agentInfo(self.snapshot, heartbeatSeconds: 10)
        func exception(_ method: MethodRequest, user: String?) throws -> ExceptionBody? {
            guard case .reply(let replies) = responder.decide(try self.request(method, user: user), broadcast: false, snapshot: self.snapshot, info: info) else { return nil }
            #expect(replies.first?.correlationID == "c1")
            return try replies.first?.decodeBody(ExceptionBody.self)
        }
        let run = try MethodRequest(methodName: "run", encoding: RunRequest(command: .shell("true")))
        #expect(try exception(run, user: "intruder")?.code == .forbidden)
        #expect(try exception(run, user: nil)?.code == .forbidden)
        #expect(responder.decide(try self.request(run, user: "conductor"), broadcast: false, snapshot: self.snapshot, info: info) == .run(RunRequest(command: .shell("true"))))
        #expect(try exception(MethodRequest(methodName: "reboot"), user: "conductor")?.text == "method 'reboot' is unknown (known: apply_job, refresh, run)")
        #expect(try exception(MethodRequest(methodName: "apply_job", arguments: ["job_id": "j", "services": []]), user: "conductor")?.code == .invalidRequest)
        #expect(responder.decide(try self.request(MethodRequest(methodName: "refresh"), user: nil), broadcast: false, snapshot: self.snapshot, info: info) == .refresh)
        var noReply = try self.request(run, user: "conductor")
        noReply.replyTo = nil
        if case .ignore = responder.decide(noReply, broadcast: false, snapshot: self.snapshot, info: info) {} else { Issue.record("a request without reply_to must be ignored") }
    }

    /// docs/protocol.md: a method request read after its `conductor.deadline` (the console
    /// stopped waiting) is answered 408 and not run; one read in time runs.
    @Test func aRequestReadAfterItsDeadlineIsRefusedNotRun() throws {
        let responder = try self.responder()
        let info = responder.agentInfo(self.snapshot, heartbeatSeconds: 10)
        let now: Int64 = 1_700_000_000_000
        var late = try self.request(MethodRequest(methodName: "run", encoding: RunRequest(command: .shell("true"))), user: "conductor")
        late.extraHeaders["conductor.deadline"] = .int(now - 1500)
        guard case .reply(let replies) = responder.decide(late, broadcast: false, snapshot: self.snapshot, info: info, now: now) else {
            Issue.record("a late run must be answered, not run")
            return
        }
        let exception = try replies.first?.decodeBody(ExceptionBody.self)
        #expect(exception?.code == .timeout)
        #expect(exception?.text == "'run' is refused: its deadline passed 1500 ms before this agent read it (the sender stopped waiting); it was not run")
        late.extraHeaders["conductor.deadline"] = .int(now + 1)
        #expect(responder.decide(late, broadcast: false, snapshot: self.snapshot, info: info, now: now) == .run(RunRequest(command: .shell("true"))))
    }

    @Test func broadcastQueriesWithoutMatchStaySilentDirectOnesAnswerEmpty() throws {
        let responder = try self.responder()
        let info = responder.agentInfo(self.snapshot, heartbeatSeconds: 10)
        var query = try MeshMessage(opcode: .queryRequest, encoding: QueryRequest(what: .object, where: try Mesh.Predicate.parse(cli: "os=fedora")))
        query.replyTo = "reply"
        #expect(responder.decide(query, broadcast: true, snapshot: self.snapshot, info: info) == .reply([]))
        guard case .reply(let direct) = responder.decide(query, broadcast: false, snapshot: self.snapshot, info: info) else { Issue.record("no reply"); return }
        #expect(direct.map(\.body) == [.list([])])
        query.body = try MeshValue(encoding: QueryRequest(what: .object, where: try Mesh.Predicate.parse(cli: "os=debian")))
        guard case .reply(let found) = responder.decide(query, broadcast: true, snapshot: self.snapshot, info: info) else { Issue.record("no reply"); return }
        let objects = try found.first?.decodeBody([ObjectData].self)
        #expect(objects?.first?.objectID == ObjectID(objectName: "host", agentName: "conductor:agent:web-1", agentEpoch: 3))
        #expect(found.first?.content == "_data")
    }

    @Test func longResponsesAreSplitIntoPartials() {
        let items = (0..<10).map { MeshValue.string(String(repeating: "x", count: 50 + $0)) }
        let chunks = AgentResponder.chunked(items, maximumBytes: 200)
        #expect(chunks.count > 1)
        #expect(Array(chunks.joined()) == items)
        #expect(chunks.allSatisfy { MeshValue.list($0).jsonBytes.count <= 200 })
        #expect(AgentResponder.chunked([], maximumBytes: 200) == [[]])
    }

    /// Recipes call `conductor lock/signal/wait` from scripts: the agent's own directory
    /// leads PATH for jobs and runs, whatever PATH the agent was started with; a run's own
    /// PATH is kept as given.
    @Test func theAgentsOwnDirectoryLeadsThePathOfJobsAndRuns() async throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let directory = (executable as NSString).deletingLastPathComponent
        let job = ConfigurationJob(jobID: "path", services: [ServiceSpec(name: "s", script: "echo \"$PATH\"")])
        let applied = await JobExecutor().apply(job)
        #expect(applied.services.first?.stdout.split(separator: ":").first.map(String.init) == directory, "\(applied.services)")
        let ran = await JobExecutor().run(RunRequest(command: .shell("echo \"$PATH\"")))
        #expect(ran.stdout.split(separator: ":").first.map(String.init) == directory, "\(ran)")
        let own = await JobExecutor().run(RunRequest(command: .shell("echo \"$PATH\""), env: ["PATH": "/bin"]))
        #expect(own.stdout == "/bin\n")
    }

    /// Jobs reach the coordinator through the agent's socket: the agent's bus password is
    /// taken out of the URL they inherit; where the bus is stays.
    @Test func jobsInheritTheBusURLWithoutItsPassword() {
        let cases = [
            "amqp://agent-1:s3cr%40t@bus.example:5672/%2F": "amqp://agent-1@bus.example:5672/%2F",
            "amqps://agent:p:w@[::1]:5671/prod?heartbeat=10": "amqps://agent@[::1]:5671/prod?heartbeat=10",
            "amqp://agent@bus:5672/%2F": "amqp://agent@bus:5672/%2F",
            "amqp://bus:5672/%2F": "amqp://bus:5672/%2F",
            "not a url": "not a url",
        ]
        for (given, expected) in cases {
            let environment = JobExecutor.withoutBusPassword(["CONDUCTOR_BROKER_URL": given, "HOME": "/root"])
            #expect(environment == ["CONDUCTOR_BROKER_URL": expected, "HOME": "/root"], "\(given)")
        }
        #expect(JobExecutor.withoutBusPassword(["HOME": "/root"]) == ["HOME": "/root"])
    }

    /// A command that takes less than a millisecond still has a duration (`duration_us`).
    @Test func runResultsCarryMicroseconds() async throws {
        let result = await JobExecutor().run(RunRequest(command: .argv(["true"])))
        let microseconds = try #require(result.durationMicroseconds)
        #expect(microseconds > 0)
        #expect(result.durationMilliseconds == microseconds / 1000)
        #expect(result.duration == .microseconds(microseconds))
        let wire = try MeshValue(encoding: result)
        #expect(wire[path: "duration_us"] == .int(microseconds))
        #expect(try wire.decode(as: RunResult.self) == result)
        // From an agent without the extension: milliseconds.
        let older = RunResult(exitCode: 0, stdout: "", stderr: "", durationMilliseconds: 12)
        #expect(older.duration == .milliseconds(12))
    }

    @Test func parametersReachTheScriptUnderBothNamesAndMissingToolsFailClearly() async {
        let job = ConfigurationJob(jobID: "j1", deployment: "d", services: [
            ServiceSpec(name: "s", script: "echo \"$db_host $CONDUCTOR_PARAM_DB_HOST $port $CONDUCTOR_DEPLOYMENT\"", parameters: ["db_host": "10.0.0.7", "port": 5432]),
            ServiceSpec(name: "p", script: "notice('x')", kind: .puppet),
        ])
        let executor = JobExecutor(findExecutable: { _ in nil })
        let result = await executor.apply(job)
        #expect(result.status == .failed)
        #expect(result.services.first?.stdout == "10.0.0.7 10.0.0.7 5432 d\n")
        #expect(result.services.last?.exitCode == 127)
        #expect(result.services.last?.stderr.contains("puppet, which is not installed") == true)
    }
}
