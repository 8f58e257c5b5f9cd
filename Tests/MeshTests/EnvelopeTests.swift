import AMQPProtocol
import Mesh
import NIOCore
import Testing

@Suite("Envelope: agent names, headers, AMQP round trips")
struct EnvelopeTests {
    @Test(arguments: ["conductor:agent:web-1", "conductor:agent:0b6f2c1e-6a47-4a8e-9f4a-2d6a1c3e9b10", "acme:probe:node.eu-west_1"])
    func validAgentNames(text: String) throws {
        let name = try AgentName(parsing: text)
        #expect(name.description == text)
        #expect(AgentName(text) == name)
    }

    @Test("invalid agent names say which part is wrong", arguments: [
        ("conductor:agent", "agent name 'conductor:agent' is not vendor:product:instance"),
        ("conductor:agent:a:b", "agent name 'conductor:agent:a:b' is not vendor:product:instance"),
        (":agent:x", "agent vendor is empty"),
        ("con.ductor:agent:x", "agent vendor 'con.ductor' may only hold up to 64 letters, digits, '-' and '_'"),
        ("conductor:ag#ent:x", "agent product 'ag#ent' may only hold up to 64 letters, digits, '-' and '_'"),
        ("conductor:agent:", "agent instance is empty"),
        ("conductor:agent:web 1", "agent instance 'web 1' may only hold letters, digits, '-', '_' and inner '.'"),
        ("conductor:agent:.hidden", "agent instance '.hidden' may only hold letters, digits, '-', '_' and inner '.'"),
        ("conductor:agent:" + String(repeating: "x", count: 129), "agent instance is longer than 128 bytes"),
    ])
    func invalidAgentNames(text: String, message: String) {
        do {
            _ = try AgentName(parsing: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .invalidAgentName)
            #expect(error.message == message)
        }
    }

    @Test func agentNameDerivedNames() throws {
        let name = try AgentName(instance: "web-1")
        #expect(name.description == "conductor:agent:web-1")
        #expect(name.heartbeatSubject == "agent.ind.heartbeat.conductor.agent")
        #expect(name.jobInbox == "conductor.agent.web-1.jobs")
        #expect(QMF.Subject.event(package: "org.conductor", class: "job") == "agent.ind.event.org.conductor.job")
    }

    @Test func opcodesAndMethods() {
        #expect(Opcode.allCases.map(\.rawValue) == [
            "_agent_heartbeat_indication", "_agent_locate_request", "_agent_locate_response",
            "_query_request", "_query_response", "_method_request", "_method_response",
            "_data_indication", "_exception",
        ])
        #expect(Opcode.queryRequest.messageMethod == .request)
        #expect(Opcode.exception.messageMethod == .response)
        #expect(Opcode.agentHeartbeatIndication.messageMethod == .indication)
    }

    @Test func requestToPropertiesAndBack() throws {
        var message = MeshMessage(
            opcode: .methodRequest,
            body: ["_method_name": "run", "_arguments": ["command": ["echo", "hi"]]],
            replyTo: "reply-queue", correlationID: "c-1", userID: "conductor",
            expiration: .seconds(30), persistent: true, extraHeaders: ["x-trace": "t-9"]
        )
        message.messageID = "m-1"
        let properties = message.properties()
        #expect(properties.contentType == "application/json")
        #expect(properties.appId == "qmf2")
        #expect(properties.headers?["qmf.opcode"] == .string("_method_request"))
        #expect(properties.headers?["method"] == .string("request"))
        #expect(properties.headers?["partial"] == nil)
        #expect(properties.headers?["qmf.agent"] == nil)
        #expect(properties.headers?["x-trace"] == .string("t-9"))
        #expect(properties.replyTo == "reply-queue")
        #expect(properties.correlationId == "c-1")
        #expect(properties.userId == "conductor")
        #expect(properties.expiration == "30000")
        #expect(properties.deliveryMode == 2)
        let body = message.bodyBuffer()
        #expect(String(buffer: body) == #"{"_arguments":{"command":["echo","hi"]},"_method_name":"run"}"#)
        #expect(try MeshMessage(properties: properties, body: body) == message)
    }

    @Test func responseCarriesCorrelationAndAgent() throws {
        let request = MeshMessage(opcode: .queryRequest, body: ["_what": "OBJECT"], replyTo: "r", correlationID: "42")
        let agent = try AgentName(instance: "n1")
        let response = request.response(opcode: .queryResponse, body: [], agent: agent, content: QMF.Content.data, partial: true)
        let properties = response.properties()
        #expect(properties.correlationId == "42")
        #expect(properties.replyTo == nil)
        #expect(properties.headers?["qmf.agent"] == .string("conductor:agent:n1"))
        #expect(properties.headers?["qmf.content"] == .string("_data"))
        #expect(properties.headers?["partial"] == .bool(true))
        #expect(properties.headers?["method"] == .string("response"))
        #expect(try MeshMessage(properties: properties, body: response.bodyBuffer()) == response)

        let exception = request.exceptionResponse(ExceptionBody(code: .notFound, text: "no method 'x'"), agent: agent)
        #expect(String(buffer: exception.bodyBuffer()) == #"{"_values":{"error_code":404,"error_text":"no method 'x'"}}"#)
        #expect(try exception.decodeBody(ExceptionBody.self) == ExceptionBody(code: .notFound, text: "no method 'x'"))
    }

    @Test func readsWhatPikaSends() throws {
        // What a Python client typically sends: int header types, charset in content type,
        // method header absent, partial as an integer.
        let properties = BasicProperties(
            contentType: "application/json; charset=utf-8",
            headers: ["qmf.opcode": .bytes(Array("_query_request".utf8)), "partial": .int8(1), "x-n": .int32(7), "x-t": .timestamp(5)],
            replyTo: "amq.gen-1"
        )
        let message = try MeshMessage(properties: properties, body: ByteBuffer(string: #"{"_what": "OBJECT"}"#))
        #expect(message.opcode == .queryRequest)
        #expect(message.method == .request)
        #expect(message.partial)
        #expect(message.extraHeaders == ["x-n": 7, "x-t": 5])
        #expect(message.appID == nil)
        #expect(try message.decodeBody(QueryRequest.self) == QueryRequest(what: .object))
        let empty = try MeshMessage(properties: BasicProperties(headers: ["qmf.opcode": .string("_agent_locate_request")]), body: ByteBuffer())
        #expect(empty.body == .map([:]))
        #expect(try empty.decodeBody(AgentLocateRequest.self) == AgentLocateRequest())
    }

    @Test("refuses what is not a QMF message", arguments: [
        (BasicProperties(headers: [:]), "{}", MeshError.Code.missingHeader, "header 'qmf.opcode' is missing"),
        (BasicProperties(), "{}", .missingHeader, "header 'qmf.opcode' is missing"),
        (BasicProperties(headers: ["qmf.opcode": .string("_bogus")]), "{}", .unknownOpcode, #"opcode "_bogus" is unknown"#),
        (BasicProperties(headers: ["qmf.opcode": .int32(1)]), "{}", .unknownOpcode, "opcode 1 is unknown"),
        (BasicProperties(contentType: "text/plain", headers: ["qmf.opcode": .string("_exception")]), "{}", .unsupportedContentType, "content type 'text/plain' is not application/json"),
        (BasicProperties(headers: ["qmf.opcode": .string("_exception"), "method": .string("ask")]), "{}", .invalidHeader, "header 'method' is 'ask', expected request, response or indication"),
        (BasicProperties(headers: ["qmf.opcode": .string("_exception"), "qmf.agent": .int8(1)]), "{}", .invalidHeader, "header 'qmf.agent' should be a string, found 1"),
        (BasicProperties(headers: ["qmf.opcode": .string("_exception")], expiration: "soon"), "{}", .invalidHeader, "expiration 'soon' is not a number of milliseconds"),
    ])
    func refuses(properties: BasicProperties, body: String, code: MeshError.Code, message: String) {
        do {
            _ = try MeshMessage(properties: properties, body: ByteBuffer(string: body))
            Issue.record("accepted")
        } catch {
            #expect(error.code == code)
            #expect(error.message == message)
        }
    }

    @Test func refusesABodyThatIsNotJSON() {
        #expect(throws: MeshError.self) {
            try MeshMessage(properties: BasicProperties(headers: ["qmf.opcode": .string("_exception")]), body: ByteBuffer(string: "{oops"))
        }
    }

    @Test func fieldValuesMapToMeshValues() {
        let value: MeshValue = ["a": [1, 2.5, "x", true, nil], "b": ["c": -3]]
        #expect(MeshValue(fieldValue: value.fieldValue) == value)
        #expect(MeshValue(fieldValue: .decimal(AMQPDecimal(scale: 2, value: 150))) == 1.5)
        #expect(MeshValue(fieldValue: .uint32(7)) == 7)
        #expect(MeshValue(fieldValue: .bytes([0xFF])) == [255])
    }
}
