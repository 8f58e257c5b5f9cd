import Conductor
import Foundation
import HTTPTypes
import Hummingbird
import Mesh
import NIOCore

/// What a request carries besides itself: the address it came from (an instance that
/// reports no `ipaddress` is known by it).
struct ConfigRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    /// This machine's address the request came to.
    let localAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = CoreRequestContextStorage(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.localAddress = source.channel.localAddress
    }
}

/// The routes, each a desk call between parsing and rendering:
///
/// | request | answers |
/// | --- | --- |
/// | `GET /configs/v1/<id>` | 200 the configuration (JSON, or `NAME='value'` lines for `Accept: text/x-shellscript` or `text/plain`), 202 what it waits for, 401, 404, 409 |
/// | `PUT /params/v1/<id>` | 200 the facts recorded, 400 a body that is not a JSON object (or a form), 413 over 64 KiB, 401, 404 |
/// | `GET /agent/v1/conductor` | 200 the agent binary with `X-Conductor-SHA256`, 401 |
/// | `POST /agents/v1/enroll` | 200 an `EnrollmentGrant` (JSON) for the invitation's token, 401, 404 without enrolment, 502 |
///
/// Anything else is 404 (405 for a known path with another method). Nothing a client
/// sends makes it throw: every failure is an answer.
struct ConfigResponder: HTTPResponder {
    typealias Context = ConfigRequestContext

    /// The most a PUT may carry.
    static let maximumBody = 64 * 1024

    let desk: PhoneHomeDesk
    let agent: AgentBinary
    /// Agents started by hand enroll here; nil: 404.
    let enrollment: AgentEnrollment?

    func respond(to request: Request, context: Context) async throws -> Response {
        let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let format = Format(accept: request.headers[.accept])
        let token = Self.bearerToken(request.headers[.authorization])
        let peer = context.remoteAddress?.ipAddress
        switch parts.count == 3 ? (parts[0], parts[1]) : ("", "") {
        case ("configs", "v1"):
            // Not HEAD: a fetch answers the roll-out, and a HEAD fetches nothing.
            guard request.method == .get else { return Self.notAllowed("GET", format) }
            return Self.render(await self.desk.configuration(instanceID: parts[2], token: token, peer: peer), format)
        case ("params", "v1"):
            guard request.method == .put || request.method == .post else { return Self.notAllowed("PUT", format) }
            let facts: MeshValue
            switch await Self.facts(of: request) {
            case .success(let parsed): facts = parsed
            case .failure(let refusal): return refusal.response(format)
            }
            return Self.render(await self.desk.report(instanceID: parts[2], token: token, facts: facts, peer: peer), format)
        case ("agent", "v1") where parts[2] == "conductor":
            guard request.method == .get || request.method == .head else { return Self.notAllowed("GET", format) }
            guard await self.desk.mayDownloadAgent(token: token) else {
                return Refusal(.unauthorized, "the agent is for instances of a deployment being launched: send Authorization: Bearer <an instance's token>")
                    .response(format)
            }
            do {
                return try await self.agent.response(bodyless: request.method == .head)
            } catch {
                return Refusal(.internalServerError, "\(error)").response(format)
            }
        case ("agents", "v1") where parts[2] == "enroll":
            guard request.method == .post else { return Self.notAllowed("POST", .json) }
            guard let enrollment = self.enrollment else {
                return Refusal(.notFound, "this coordinator takes no enrolments (it has no bus whose logins it makes)").response(.json)
            }
            switch await enrollment.enroll(token: token, reachedAt: context.localAddress?.ipAddress) {
            case .success(let grant):
                let body = (try? MeshValue(encoding: grant)) ?? .map([:])
                return Self.json(body, status: .ok, headers: [.cacheControl: "no-store"])
            case .failure(let refusal):
                return Refusal(HTTPResponse.Status(code: refusal.status), refusal.message).response(.json)
            }
        default:
            return Refusal(.notFound, "no such path \(request.uri.path): the API has /configs/v1/<instance>, /params/v1/<instance>, /agent/v1/conductor, /agents/v1/enroll")
                .response(format)
        }
    }

    // MARK: - Requests

    /// `Authorization: Bearer <token>` (the scheme in any case).
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// A PUT's facts: a JSON object, or a form (`ipaddress=10.0.0.5&custom.version=42`,
    /// dotted names nested) when sent as `application/x-www-form-urlencoded` and not
    /// starting with `{` or `[` (`curl -d '{…}'` sends JSON with the form's type).
    static func facts(of request: Request) async -> Result<MeshValue, Refusal> {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > Self.maximumBody {
            return .failure(Refusal(.contentTooLarge, "the body has \(length) bytes; at most \(Self.maximumBody) are taken"))
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maximumBody)
        } catch is NIOTooManyBytesError {
            return .failure(Refusal(.contentTooLarge, "the body is over \(Self.maximumBody) bytes"))
        } catch {
            return .failure(Refusal(.badRequest, "cannot read the body: \(error)"))
        }
        let bytes = Array(body.readableBytesView)
        let looksLikeJSON = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }.map { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") } ?? false
        if !looksLikeJSON, request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true {
            guard let form = FormFacts.parse(bytes) else {
                return .failure(Refusal(.badRequest, "the form must be name=value pairs joined by '&', names of letters, digits, '_', '-' and '.', in UTF-8"))
            }
            return .success(form)
        }
        do {
            return .success(try MeshValue(json: bytes))
        } catch {
            return .failure(Refusal(.badRequest, "\(error.message); send a JSON object like {\"ipaddress\": \"10.0.0.5\", \"custom\": {\"version\": \"42\"}}"))
        }
    }

    // MARK: - Responses

    /// JSON unless the client asks for shell lines or plain text (and not JSON).
    enum Format {
        case json
        case shell(contentType: String)

        init(accept: String?) {
            let accept = accept?.lowercased() ?? ""
            if accept.contains("application/json") || accept.isEmpty {
                self = .json
            } else if accept.contains("text/x-shellscript") {
                self = .shell(contentType: "text/x-shellscript; charset=utf-8")
            } else if accept.contains("text/plain") {
                self = .shell(contentType: "text/plain; charset=utf-8")
            } else {
                self = .json
            }
        }
    }

    /// An answer that is not the happy path: a status and why.
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var message: String

        init(_ status: HTTPResponse.Status, _ message: String) {
            self.status = status
            self.message = message
        }

        func response(_ format: Format) -> Response {
            var headers: HTTPFields = [:]
            if self.status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"conductor\"" }
            switch format {
            case .json: return ConfigResponder.json(.map(["error": .string(self.message)]), status: self.status, headers: headers)
            case .shell(let type): return ConfigResponder.text("# error: \(self.message)\n", status: self.status, type: type, headers: headers)
            }
        }
    }

    static func render(_ answer: PhoneHomeAnswer, _ format: Format) -> Response {
        // Configurations carry secrets: no cache keeps them.
        let noStore: HTTPFields = [.cacheControl: "no-store"]
        switch answer {
        case .ready(let configuration):
            switch format {
            case .json: return Self.json(configuration.json, status: .ok, headers: noStore)
            case .shell(let type): return Self.text(configuration.shell, status: .ok, type: type, headers: noStore)
            }
        case .waiting(let waiting):
            var headers = noStore
            headers[.retryAfter] = "2"
            switch format {
            case .json: return Self.json(waiting.json, status: .accepted, headers: headers)
            case .shell(let type): return Self.text(waiting.text, status: .accepted, type: type, headers: headers)
            }
        case .recorded(let report):
            return Self.json(report.json, status: .ok, headers: noStore)
        case .invalid(let message): return Refusal(.badRequest, message).response(format)
        case .unauthorized(let message): return Refusal(.unauthorized, message).response(format)
        case .notFound(let message): return Refusal(.notFound, message).response(format)
        case .failed(let message): return Refusal(.conflict, message).response(format)
        case .unavailable(let message): return Refusal(.serviceUnavailable, message).response(format)
        }
    }

    static func notAllowed(_ allowed: String, _ format: Format) -> Response {
        var response = Refusal(.methodNotAllowed, "this path takes \(allowed)").response(format)
        response.headers[.allow] = allowed
        return response
    }

    static func json(_ value: MeshValue, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.json + "\n")))
    }

    static func text(_ text: String, status: HTTPResponse.Status, type: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = type
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// `application/x-www-form-urlencoded` facts: `name=value` pairs; a dotted name nests
/// (`custom.version=42` is `{"custom": {"version": "42"}}`); values are strings.
enum FormFacts {
    static func parse(_ bytes: [UInt8]) -> MeshValue? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        var facts: [String: MeshValue] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(halves[0]), Self.isName(name), let value = Self.decode(halves.count > 1 ? halves[1] : "") else { return nil }
            Self.set(&facts, path: name.split(separator: ".").map(String.init), to: .string(value))
        }
        return .map(facts)
    }

    /// `ipaddress`, `custom.version`: parts of letters, digits, `_` and `-`, joined by dots.
    private static func isName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { part in
            !part.isEmpty && part.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }
        }
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    private static func set(_ map: inout [String: MeshValue], path: [String], to value: MeshValue) {
        guard let first = path.first else { return }
        if path.count == 1 {
            map[first] = value
            return
        }
        var inner = map[first]?.mapValue ?? [:]
        Self.set(&inner, path: Array(path.dropFirst()), to: value)
        map[first] = .map(inner)
    }
}
