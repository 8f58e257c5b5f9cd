import Foundation
import Mesh
import MeshClient

/// What the agent does with one request: answer at once, run something, or nothing.
public enum RequestDecision: Sendable, Equatable {
    /// Publish these to the request's `reply_to` (empty: stay silent, e.g. no match on a broadcast).
    case reply([MeshMessage])
    case run(RunRequest)
    case applyJob(ConfigurationJob)
    case refresh
    /// Not answerable (no reply_to, not a request): log the reason and drop it.
    case ignore(String)
}

/// The agent's protocol logic without I/O: reads a request against the current facts and
/// decides the answer. docs/protocol.md is the contract.
public struct AgentResponder: Sendable {
    public var name: AgentName
    public var epoch: Int64
    public var trustedUser: String
    /// When not empty, `run` and `apply_job` must also carry a valid signature by one of
    /// these keys (`RequestSignature`).
    public var trustedKeys: [RequestSigner.PublicKey]
    public var maximumResponseBytes: Int

    /// Facts the heartbeat carries (and locate predicates see), besides QMF's reserved ones.
    public static let heartbeatAttributes = ["hostname", "fqdn", "uuid", "os", "arch", "ipaddress", "custom"]

    public init(
        name: AgentName, epoch: Int64, trustedUser: String, trustedKeys: [RequestSigner.PublicKey] = [], maximumResponseBytes: Int = 256 * 1024
    ) {
        self.name = name
        self.epoch = epoch
        self.trustedUser = trustedUser
        self.trustedKeys = trustedKeys
        self.maximumResponseBytes = maximumResponseBytes
    }

    public func agentInfo(_ snapshot: FactSnapshot, heartbeatSeconds: Int64, now: Date = Date()) -> AgentInfo {
        var attributes: [String: MeshValue] = [:]
        for key in Self.heartbeatAttributes {
            if let value = snapshot.values[key] { attributes[key] = value }
        }
        return AgentInfo(name: self.name, epoch: self.epoch, timestamp: Self.nanoseconds(now), heartbeatInterval: heartbeatSeconds, attributes: attributes)
    }

    /// `broadcast` is true for requests that came through `qmf.default.topic`: those are
    /// not answered when nothing matches.
    /// `now`: milliseconds since 1970, for signature expiry and the request's deadline.
    public func decide(
        _ request: MeshMessage, broadcast: Bool, snapshot: FactSnapshot, info: AgentInfo, now: Int64 = RequestSigner.now()
    ) -> RequestDecision {
        guard request.replyTo != nil else {
            return .ignore("\(request.opcode.rawValue) without reply_to")
        }
        switch request.opcode {
        case .agentLocateRequest:
            return self.locate(request, info: info)
        case .queryRequest:
            return self.query(request, broadcast: broadcast, snapshot: snapshot)
        case .methodRequest:
            return self.method(request, now: now)
        default:
            return .reply([request.exceptionResponse(ExceptionBody(code: .notImplemented, text: "opcode \(request.opcode.rawValue) is not a request this agent answers"), agent: self.name)])
        }
    }

    private func fail(_ request: MeshMessage, _ code: ExceptionCode, _ text: String) -> RequestDecision {
        .reply([request.exceptionResponse(ExceptionBody(code: code, text: text), agent: self.name)])
    }

    private func locate(_ request: MeshMessage, info: AgentInfo) -> RequestDecision {
        let locate: AgentLocateRequest
        do {
            locate = try request.decodeBody()
        } catch {
            return self.fail(request, .invalidRequest, "invalid _agent_locate_request: \(error.message)")
        }
        if let predicate = locate.predicate, !predicate.matches(.map(info.values)) { return .reply([]) }
        guard let body = try? MeshValue(encoding: info) else {
            return self.fail(request, .internalError, "cannot encode this agent's info")
        }
        return .reply([request.response(opcode: .agentLocateResponse, body: body, agent: self.name)])
    }

    private func query(_ request: MeshMessage, broadcast: Bool, snapshot: FactSnapshot) -> RequestDecision {
        let query: QueryRequest
        do {
            query = try QueryRequest.reading(request.body)
        } catch {
            return self.fail(request, .invalidRequest, "invalid _query_request: \(error.message)")
        }
        let classMatches = query.schemaID.map { $0.package == MeshSchema.package && $0.className == MeshSchema.host.id.className } ?? true
        var items: [MeshValue] = []
        switch query.what {
        case .object, .objectID:
            let objectMatches = query.objectID.map { id in
                id.objectName == MeshSchema.hostObjectName && (id.agentName ?? self.name.description) == self.name.description
                    && (id.agentEpoch ?? self.epoch) == self.epoch
            } ?? true
            let values = snapshot.values
            if classMatches, objectMatches, query.predicate?.matches(.map(values)) ?? true {
                let objectID = ObjectID(objectName: MeshSchema.hostObjectName, agentName: self.name.description, agentEpoch: self.epoch)
                // Built as a tree: through JSONEncoder this was most of an agent's work per query.
                if query.what == .object {
                    items.append(ObjectData(objectID: objectID, schemaID: MeshSchema.hostClassID, values: values, updateTimestamp: Self.nanoseconds(snapshot.refreshedAt)).value)
                } else {
                    items.append(objectID.value)
                }
            }
        case .schema:
            if classMatches, let schema = try? MeshValue(encoding: self.hostSchema(snapshot)) { items.append(schema) }
        case .schemaID:
            if classMatches, let id = try? MeshValue(encoding: MeshSchema.hostClassID) { items.append(id) }
        }
        if items.isEmpty && broadcast { return .reply([]) }
        let chunks = Self.chunked(items, maximumBytes: self.maximumResponseBytes)
        return .reply(chunks.enumerated().map { index, chunk in
            request.response(opcode: .queryResponse, body: .list(chunk), agent: self.name, content: query.what.responseContent, partial: index < chunks.count - 1)
        })
    }

    /// The `host` class with this agent's custom facts added as properties.
    public func hostSchema(_ snapshot: FactSnapshot) -> SchemaClass {
        snapshot.schema
    }

    private func method(_ request: MeshMessage, now: Int64) -> RequestDecision {
        let call: MethodRequest
        do {
            call = try MethodRequest.reading(request.body)
        } catch {
            return self.fail(request, .invalidRequest, "invalid _method_request: \(error.message)")
        }
        if let objectID = call.objectID, objectID.objectName != MeshSchema.hostObjectName {
            return self.fail(request, .notFound, "object '\(objectID.objectName)' is unknown (known: \(MeshSchema.hostObjectName))")
        }
        let needsTrust = call.methodName == MeshMethod.run || call.methodName == MeshMethod.applyJob
        if needsTrust && request.userID != self.trustedUser {
            let sender = request.userID.map { "user_id '\($0)'" } ?? "a message without user_id"
            return self.fail(request, .forbidden, "'\(call.methodName)' is refused: \(sender) is not the trusted sender")
        }
        if needsTrust && !self.trustedKeys.isEmpty {
            do {
                _ = try RequestSignature.verify(request, agent: self.name.description, method: call.methodName, trustedKeys: self.trustedKeys, now: now)
            } catch {
                return self.fail(request, .forbidden, "'\(call.methodName)' is refused: \(error.reason)")
            }
        }
        // Its sender has given up (and may retry): acting now would act twice.
        if let deadline = request.deadline, deadline <= now {
            return self.fail(
                request, .timeout,
                "'\(call.methodName)' is refused: its deadline passed \(now - deadline) ms before this agent read it (the sender stopped waiting); it was not run")
        }
        do {
            switch call.methodName {
            case MeshMethod.run:
                let run: RunRequest = try call.decodeArguments()
                try run.validate()
                return .run(run)
            case MeshMethod.applyJob:
                let job: ConfigurationJob = try call.decodeArguments()
                try job.validate()
                return .applyJob(job)
            case MeshMethod.refresh:
                return .refresh
            default:
                let known = [MeshMethod.applyJob, MeshMethod.refresh, MeshMethod.run].joined(separator: ", ")
                return self.fail(request, .notFound, "method '\(call.methodName)' is unknown (known: \(known))")
            }
        } catch {
            let text = error.message.hasPrefix("invalid arguments") ? error.message : "invalid arguments for '\(call.methodName)': \(error.message)"
            return self.fail(request, .invalidRequest, text)
        }
    }

    /// Splits a response list so each part's JSON stays under `maximumBytes` (an item
    /// larger than that goes alone). Always at least one part, possibly empty.
    public static func chunked(_ items: [MeshValue], maximumBytes: Int) -> [[MeshValue]] {
        // One item goes alone whatever its size: no need to write it out to measure it.
        if items.count <= 1 { return [items] }
        var chunks: [[MeshValue]] = []
        var current: [MeshValue] = []
        var size = 2
        for item in items {
            let itemSize = item.jsonBytes.count + 1
            if !current.isEmpty && size + itemSize > maximumBytes {
                chunks.append(current)
                current = []
                size = 2
            }
            current.append(item)
            size += itemSize
        }
        if !current.isEmpty || chunks.isEmpty { chunks.append(current) }
        return chunks
    }

    static func nanoseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000_000).rounded())
    }
}
