import Mesh
import Testing

@Suite("Typed bodies: wire shapes")
struct BodiesTests {
    let agent = try! AgentName(instance: "web-1")

    @Test func heartbeat() throws {
        let info = AgentInfo(name: agent, epoch: 3, timestamp: 1_700_000_000_000_000_000, heartbeatInterval: 10, attributes: ["hostname": "web-1", "os": "linux"])
        let value = try MeshValue(encoding: info)
        #expect(value.json == #"{"_values":{"_epoch":3,"_heartbeat_interval":10,"_instance":"web-1","_name":"conductor:agent:web-1","_product":"agent","_timestamp":1700000000000000000,"_vendor":"conductor","hostname":"web-1","os":"linux"}}"#)
        #expect(try value.decode(as: AgentInfo.self) == info)
        #expect(info.heartbeatExpiration == .seconds(20))
        #expect(info.lostAfter == .seconds(30))
        #expect(try Predicate.parse(cli: "_name=conductor:agent:web-1,os=linux").matches(.map(info.values)))
        let message = try MeshMessage(opcode: .agentHeartbeatIndication, encoding: info, agent: agent.description)
        #expect(message.method == .indication)
    }

    @Test func heartbeatMissingFieldsAreNamed() {
        let value: MeshValue = ["_values": ["_name": "conductor:agent:x", "_epoch": 1, "_timestamp": 2]]
        do {
            _ = try value.decode(as: AgentInfo.self)
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("_heartbeat_interval"))
        }
    }

    @Test func queryRequestAndResponse() throws {
        let request = QueryRequest(what: .object, schemaID: MeshSchema.hostClassID, where: try Predicate.parse(cli: "os=linux"))
        #expect(try MeshValue(encoding: request).json == #"{"_schema_id":{"_class_name":"host","_package_name":"org.conductor","_type":"_data"},"_what":"OBJECT","_where":["eq","os",["quote","linux"]]}"#)
        let object = ObjectData(
            objectID: ObjectID(objectName: MeshSchema.hostObjectName, agentName: agent.description, agentEpoch: 3),
            schemaID: MeshSchema.hostClassID, values: ["hostname": "web-1", "sshd": ["port": 22]], updateTimestamp: 5
        )
        let body = try MeshValue(encoding: [object])
        #expect(body.json == #"[{"_object_id":{"_agent_epoch":3,"_agent_name":"conductor:agent:web-1","_object_name":"host"},"_schema_id":{"_class_name":"host","_package_name":"org.conductor","_type":"_data"},"_update_ts":5,"_values":{"hostname":"web-1","sshd":{"port":22}}}]"#)
        #expect(try body.decode(as: [ObjectData].self) == [object])
        #expect(QueryTarget.schema.responseContent == "_schema_class")
        #expect(try MeshValue(json: #"{"_what":"SCHEMA"}"#).decode(as: QueryRequest.self) == QueryRequest(what: .schema))
    }

    @Test func unknownQueryTargetIsNamed() throws {
        do {
            _ = try MeshValue(json: #"{"_what":"EVERYTHING"}"#).decode(as: QueryRequest.self)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .invalidBody)
            #expect(error.message.contains("'_what'"))
        }
    }

    @Test func methodRequestWithTypedArguments() throws {
        let run = RunRequest(command: .argv(["uname", "-a"]), timeoutSeconds: 5, env: ["LANG": "C"])
        let request = try MethodRequest(methodName: MeshMethod.run, encoding: run)
        #expect(try MeshValue(encoding: request).json == #"{"_arguments":{"command":["uname","-a"],"env":{"LANG":"C"},"timeout_seconds":5},"_method_name":"run"}"#)
        #expect(try request.decodeArguments(RunRequest.self) == run)
        let shell = try MeshValue(json: #"{"_method_name":"run","_arguments":{"command":"echo hi | wc -c"}}"#).decode(as: MethodRequest.self)
        let decoded = try shell.decodeArguments(RunRequest.self)
        #expect(decoded.command.argv == ["/bin/sh", "-c", "echo hi | wc -c"])
        #expect(decoded.effectiveTimeoutSeconds == 60)
        #expect(shell.objectID == nil)
    }

    @Test("invalid run arguments are refused with a clear text", arguments: [
        (#"{"command": 5}"#, "invalid arguments for 'run': not a valid RunRequest: 'command' should be a string"),
        (#"{}"#, "invalid arguments for 'run': not a valid RunRequest: 'command' is missing"),
        (#"{"command": []}"#, "command is empty"),
        (#"{"command": "  "}"#, "command is empty"),
        (#"{"command": "x", "timeout_seconds": 0}"#, "timeout_seconds must be more than 0 and at most 86400"),
        (#"{"command": "x", "env": {"1A": "x"}}"#, "env '1A' is not a valid environment variable name"),
    ])
    func invalidRun(arguments: String, message: String) throws {
        guard case .map(let map) = try MeshValue(json: arguments) else { return }
        let request = MethodRequest(methodName: MeshMethod.run, arguments: map)
        do {
            try request.decodeArguments(RunRequest.self).validate()
            Issue.record("accepted")
        } catch {
            #expect(error.code == .invalidArguments)
            #expect(error.message == message)
        }
    }

    @Test func runResult() throws {
        let result = RunResult(exitCode: 0, stdout: "hi\n", stderr: "", durationMilliseconds: 12)
        let response = try MethodResponse(encoding: result)
        #expect(try MeshValue(encoding: response).json == #"{"_arguments":{"duration_ms":12,"exit_code":0,"stderr":"","stdout":"hi\n","timed_out":false,"truncated":false}}"#)
        #expect(try response.decodeArguments(RunResult.self) == result)
    }

    @Test func configurationJob() throws {
        let job = ConfigurationJob(jobID: "d1-g2-web", deployment: "d1", services: [
            ServiceSpec(name: "nginx", script: "apt-get install -y nginx", parameters: ["db_host": "10.0.0.7", "db_port": 5432, "tls": true]),
            ServiceSpec(name: "app", script: "include app", kind: .puppet),
        ], timeoutSeconds: 600)
        try job.validate()
        let value = try MeshValue(encoding: job)
        #expect(value.json == #"{"deployment":"d1","job_id":"d1-g2-web","services":[{"kind":"shell","name":"nginx","parameters":{"db_host":"10.0.0.7","db_port":5432,"tls":true},"script":"apt-get install -y nginx"},{"kind":"puppet","name":"app","parameters":{},"script":"include app"}],"timeout_seconds":600}"#)
        #expect(try value.decode(as: ConfigurationJob.self) == job)
        #expect(job.services[0].environment == ["db_host": "10.0.0.7", "db_port": "5432", "tls": "true"])
        let minimal = try MeshValue(json: #"{"job_id":"j","services":[{"name":"s","script":"true"}]}"#).decode(as: ConfigurationJob.self)
        #expect(minimal.services[0].kind == .shell && minimal.services[0].parameters.isEmpty)
        #expect(minimal.effectiveTimeoutSeconds == 1800)
    }

    @Test("invalid jobs name the service", arguments: [
        (#"{"job_id":"","services":[{"name":"s","script":"true"}]}"#, "job_id must be 1 to 256 bytes"),
        (#"{"job_id":"j","services":[]}"#, "job 'j' has no services"),
        (#"{"job_id":"j","services":[{"name":"s","script":"a"},{"name":"s","script":"b"}]}"#, "service 's' appears twice"),
        (#"{"job_id":"j","services":[{"name":"s","script":"a","parameters":{"db-host":"x"}}]}"#, "service 's' parameter 'db-host' is not a valid environment variable name"),
        (#"{"job_id":"j","services":[{"name":"","script":"a"}]}"#, "services[0] has an empty name"),
    ])
    func invalidJob(json: String, message: String) throws {
        do {
            try MeshValue(json: json).decode(as: ConfigurationJob.self).validate()
            Issue.record("accepted")
        } catch {
            #expect(error.message == message)
        }
        #expect(throws: MeshError.self) { try MeshValue(json: #"{"job_id":"j","services":[{"name":"s","script":"a","kind":"ansible"}]}"#).decode(as: ConfigurationJob.self) }
    }

    @Test func jobResult() throws {
        let result = JobResult(jobID: "j", status: .timedOut, services: [ServiceResult(name: "s", exitCode: 137, stdout: "", stderr: "killed", truncated: true, durationMilliseconds: 1000)])
        let value = try MeshValue(encoding: result)
        #expect(value.json == #"{"job_id":"j","services":[{"duration_ms":1000,"exit_code":137,"name":"s","stderr":"killed","stdout":"","truncated":true}],"status":"timed_out"}"#)
        #expect(try value.decode(as: JobResult.self) == result)
    }

    @Test func schemaOfHost() throws {
        let names = Set(MeshSchema.host.properties.map(\.name))
        for fact in ["hostname", "fqdn", "uuid", "os", "os_release", "kernel", "arch", "cpu_count", "cpu_model", "memory_total", "memory_free",
                     "swap_total", "swap_free", "load_average_1", "load_average_5", "load_average_15", "uptime", "ipaddress", "interfaces", "sshd.port", "custom"] {
            #expect(names.contains(fact), "\(fact)")
        }
        let value = try MeshValue(encoding: [MeshSchema.host])
        let decoded = try value.decode(as: [SchemaClass].self)
        #expect(Set(decoded[0].properties) == Set(MeshSchema.host.properties))
        #expect(Set(decoded[0].methods.map(\.name)) == ["run", "apply_job", "refresh"])
        #expect(value[path: "x"] == nil)
        guard case .list(let list) = value, let sshd = list[0][path: "_values"]?.mapValue?["sshd.port"] else {
            Issue.record("no sshd.port in \(value)")
            return
        }
        #expect(sshd.json == #"{"_access":"RO","_desc":"first Port of sshd_config, following Include lines; 22 when absent","_kind":"property","_type":"TYPE_INT"}"#)
        #expect(MeshSchema.host.property(named: "memory_free")?.isStatistic == true)
    }

    @Test func exceptionShape() throws {
        let exception = ExceptionBody(code: .forbidden, text: "run requests are accepted only from user 'conductor'")
        #expect(try MeshValue(encoding: exception) == exception.value)
        #expect(MeshError(.invalidArguments, "bad").exception == ExceptionBody(code: .invalidRequest, text: "bad"))
    }

    @Test func event() throws {
        let event = EventData(schemaID: SchemaClassID(package: "org.conductor", className: "job_finished", type: "_event"), values: ["job_id": "j"], timestamp: 7, severity: 6)
        #expect(try MeshValue(encoding: event).json == #"{"_schema_id":{"_class_name":"job_finished","_package_name":"org.conductor","_type":"_event"},"_severity":6,"_timestamp":7,"_values":{"job_id":"j"}}"#)
    }
}
