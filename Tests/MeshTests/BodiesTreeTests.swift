import Mesh
import Testing

/// The tree builders and readers of `Bodies+Tree.swift` against the Codable conformances
/// they shortcut: same JSON out, same values in, and anything unusual left to Codable.
@Suite("Typed bodies: tree fast paths")
struct BodiesTreeTests {
    let agent = try! AgentName(instance: "web-1")

    var objects: [ObjectData] {
        let values: [String: MeshValue] = [
            "hostname": "web-1", "memory_total": 8_264_249_344, "load": 0.25, "sshd": ["port": 22], "addresses": ["10.0.0.5", "::1"],
            "custom": ["role": "web", "flag": true, "none": nil],
        ]
        return [
            ObjectData(
                objectID: ObjectID(objectName: "host", agentName: self.agent.description, agentEpoch: 3), schemaID: MeshSchema.hostClassID, values: values,
                updateTimestamp: 1_700_000_000_000_000_000),
            ObjectData(objectID: ObjectID(objectName: "host"), schemaID: SchemaClassID(package: "p", className: "c", type: "_data"), values: [:]),
        ]
    }

    @Test func objectsWriteWhatCodableWritesAndReadBack() throws {
        for object in self.objects {
            #expect(object.value.json == (try MeshValue(encoding: object)).json)
            #expect(ObjectData(tree: try MeshValue(encoding: object)) == object)
        }
        #expect(try ObjectData.list(.list(self.objects.map(\.value))) == self.objects)
        #expect(ObjectID(objectName: "host", agentName: "a", agentEpoch: 1).value.json == (try MeshValue(encoding: ObjectID(objectName: "host", agentName: "a", agentEpoch: 1))).json)
    }

    @Test func anUnusualObjectListGoesThroughCodableAndItsErrorNamesTheField() throws {
        let bad: MeshValue = [["_object_id": ["_object_name": "host"], "_schema_id": ["_package_name": "p", "_class_name": "c"], "_values": "not a map"]]
        #expect(ObjectData(tree: bad.listValue![0]) == nil)
        do {
            _ = try ObjectData.list(bad)
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("_values"))
        }
    }

    @Test func queriesReadAsCodableReadsThem() throws {
        let requests = [
            QueryRequest(what: .object),
            QueryRequest(what: .objectID, schemaID: MeshSchema.hostClassID, where: try Predicate.parse("os=linux and cpu_count>=2")),
            QueryRequest(what: .object, objectID: ObjectID(objectName: "host", agentName: self.agent.description, agentEpoch: 3)),
            QueryRequest(what: .schemaID, schemaID: SchemaClassID(package: "p", className: "c", type: "_event")),
        ]
        for request in requests {
            let body = try MeshValue(encoding: request)
            #expect(try QueryRequest.reading(body) == request)
            #expect(try QueryRequest.reading(body) == (try body.decode(as: QueryRequest.self)))
        }
        // Not the usual shape: Codable decides, and says what is wrong.
        do {
            _ = try QueryRequest.reading(["_what": "OBJECT", "_where": ["frobnicate", "os"]])
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("QueryRequest"))
        }
    }

    @Test func runResultsAndMethodRequestsRoundTrip() throws {
        let results = [
            RunResult(exitCode: 0, stdout: "ok\n", stderr: "", durationMilliseconds: 4, durationMicroseconds: 4211),
            RunResult(exitCode: 137, stdout: "", stderr: "killed", truncated: true, timedOut: true, durationMilliseconds: 10_000),
        ]
        for result in results {
            let codable = try MethodResponse(encoding: result)
            #expect(MeshValue.map(result.arguments).json == MeshValue.map(codable.arguments).json)
            #expect(try RunResult.reading(codable.arguments) == result)
        }
        // exit_code as 0.0 is not the usual shape; Codable still takes it.
        #expect(try RunResult.reading(["exit_code": .double(0), "stdout": "", "stderr": "", "truncated": false, "timed_out": false, "duration_ms": 1]).exitCode == 0)

        let calls = [
            MethodRequest(methodName: "refresh"),
            MethodRequest(objectID: ObjectID(objectName: "host"), methodName: "run", arguments: ["command": ["true"], "timeout_seconds": 10]),
        ]
        for call in calls {
            #expect(try MethodRequest.reading(try MeshValue(encoding: call)) == call)
        }
        #expect(try MethodRequest.reading(["_method_name": "run", "_arguments": nil]) == MethodRequest(methodName: "run"))
        #expect(throws: MeshError.self) { try MethodRequest.reading(["_method_name": "run", "_arguments": [1, 2]]) }
    }
}
