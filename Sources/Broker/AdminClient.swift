import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client for the broker's admin API and for RabbitMQ's management API
/// (the same paths for users and permissions): one request per connection, every request
/// bounded by `timeout`. What `conductor broker list-queues` and friends use, and what
/// provisions broker users on either broker.
public struct BrokerAdminClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var text: String { String(decoding: self.body, as: UTF8.self) }
    }

    /// The outcome of a change: `persisted` is our broker's word on whether it saved the
    /// change in its data directory; RabbitMQ's empty 201/204 answers leave it nil.
    public struct Change: Sendable, Hashable {
        public var status: Int
        public var persisted: Bool?
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String
    public var timeout: TimeAmount

    public init(host: String = "127.0.0.1", port: Int = 15672, username: String = "guest", password: String = "guest", timeout: TimeAmount = .seconds(10)) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.timeout = timeout
    }

    /// From a URL such as `http://guest:guest@127.0.0.1:15672` (RabbitMQ management's, or
    /// our broker's `--http-port`); without credentials, guest/guest.
    public init(url: String, timeout: TimeAmount = .seconds(10)) throws(BrokerAdminClientError) {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw BrokerAdminClientError(.badURL, "'\(url)' is not an admin API URL (expected http://USER:PASSWORD@HOST:PORT)")
        }
        guard components.scheme == "http" else {
            throw BrokerAdminClientError(.badURL, "'\(url)': only http:// is supported by the admin client, not \(components.scheme ?? "no scheme")")
        }
        self.init(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: components.port ?? 15672,
            username: components.percentEncodedUser?.removingPercentEncoding ?? "guest",
            password: components.percentEncodedPassword?.removingPercentEncoding ?? "guest", timeout: timeout
        )
    }

    /// Where requests go, for messages.
    public var endpoint: String { "http://\(self.host.contains(":") ? "[\(self.host)]" : self.host):\(self.port)" }

    // MARK: - Users and permissions (our broker and RabbitMQ alike)

    /// Creates the user or changes its password (`PUT /api/users/NAME`). `tags` as
    /// RabbitMQ has them ("administrator" lets the user use the admin API); RabbitMQ insists
    /// on the field, empty or not.
    @discardableResult
    public func createUser(_ name: String, password: String, tags: [String] = []) async throws -> Change {
        try await self.change(.PUT, Self.path("users", name), body: AdminAPI.encode(AdminAPI.NewUser(password: password, tags: tags)))
    }

    /// Deletes the user with its permissions; both brokers close its open connections (320).
    @discardableResult
    public func deleteUser(_ name: String) async throws -> Change {
        try await self.change(.DELETE, Self.path("users", name))
    }

    @discardableResult
    public func setPermissions(user: String, vhost: String = "/", configure: String, write: String, read: String) async throws -> Change {
        try await self.change(.PUT, Self.path("permissions", vhost, user), body: AdminAPI.encode(AdminAPI.Permission(configure: configure, write: write, read: read)))
    }

    @discardableResult
    public func clearPermissions(user: String, vhost: String = "/") async throws -> Change {
        try await self.change(.DELETE, Self.path("permissions", vhost, user))
    }

    /// Sets (or replaces) the user's topic permission on one exchange.
    @discardableResult
    public func setTopicPermissions(user: String, vhost: String = "/", exchange: String, write: String, read: String) async throws -> Change {
        try await self.change(.PUT, Self.path("topic-permissions", vhost, user), body: AdminAPI.encode(AdminAPI.TopicPermission(exchange: exchange, write: write, read: read)))
    }

    /// Removes all of the user's topic permissions in the vhost (404 when it has none).
    @discardableResult
    public func clearTopicPermissions(user: String, vhost: String = "/") async throws -> Change {
        try await self.change(.DELETE, Self.path("topic-permissions", vhost, user))
    }

    /// All topic permissions, or one user's (in one vhost, where RabbitMQ and we answer 404
    /// for none: that is an empty list here).
    public func topicPermissions(user: String? = nil, vhost: String? = nil) async throws -> [AdminAPI.TopicPermission] {
        switch (user, vhost) {
        case (let user?, let vhost?):
            do {
                return try await self.call(.GET, Self.path("topic-permissions", vhost, user), as: [AdminAPI.TopicPermission].self)
            } catch let error as BrokerAdminClientError where error.code == .notFound {
                return []
            }
        case (let user?, nil):
            return try await self.call(.GET, Self.path("users", user, "topic-permissions"), as: [AdminAPI.TopicPermission].self)
        case (nil, let vhost):
            let all = try await self.call(.GET, Self.path("topic-permissions"), as: [AdminAPI.TopicPermission].self)
            return vhost.map { vhost in all.filter { $0.vhost == vhost } } ?? all
        }
    }

    // MARK: - Requests

    /// Sends `method path` with basic authentication and an optional JSON body; any HTTP
    /// status is an answer. Throws `.unreachable`, or `.timedOut` when connecting or the
    /// answer takes longer than `timeout`.
    public func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws -> Response {
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(self.timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(host: self.host, port: self.port).get()
        } catch {
            let failure: BrokerAdminClientError
            if case .connectTimeout? = error as? ChannelError {
                failure = BrokerAdminClientError(.timedOut, "no connection to the admin API at \(self.endpoint) for \(method) \(path) within \(self.timeout.nanoseconds / 1_000_000) ms")
            } else {
                failure = BrokerAdminClientError(
                    .unreachable,
                    "cannot reach the admin API at \(self.endpoint) for \(method) \(path) (\(error); is the broker started with --http-port, or RabbitMQ's management plugin enabled?)")
            }
            promise.fail(failure)
            throw failure
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "\(self.host):\(self.port)")
        headers.add(name: "authorization", value: "Basic " + Data("\(self.username):\(self.password)".utf8).base64EncodedString())
        headers.add(name: "connection", value: "close")
        headers.add(name: "content-length", value: "\(body?.count ?? 0)")
        if body != nil { headers.add(name: "content-type", value: "application/json") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let timeout = channel.eventLoop.scheduleTask(in: self.timeout) {
            promise.fail(BrokerAdminClientError(.timedOut, "no answer from \(self.endpoint) to \(method) \(path) in \(self.timeout.nanoseconds / 1_000_000) ms"))
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let response = try await promise.futureResult.get()
        try? await channel.close()
        return response
    }

    /// `request`, decoding a 2xx JSON answer; any other status is an error with the
    /// broker's message.
    public func call<T: Decodable>(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, as type: T.Type) async throws -> T {
        let response = try await self.request(method, path, body: body)
        try self.check(response, method, path)
        do {
            return try AdminAPI.decode(type, from: response.body)
        } catch {
            throw BrokerAdminClientError(.badAnswer, "unexpected answer from \(self.endpoint) to \(method) \(path): \(response.text)", status: response.status)
        }
    }

    /// A change: any 2xx is success, with or without a body (RabbitMQ answers 201 or 204
    /// and nothing, our broker the changed entry and `persisted`).
    private func change(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws -> Change {
        let response = try await self.request(method, path, body: body)
        try self.check(response, method, path)
        let answer = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return Change(status: response.status, persisted: answer?["persisted"] as? Bool)
    }

    private func check(_ response: Response, _ method: HTTPMethod, _ path: String) throws(BrokerAdminClientError) {
        guard !(200..<300).contains(response.status) else { return }
        let code: BrokerAdminClientError.Code
        let hint: String
        switch response.status {
        case 400: (code, hint) = (.badRequest, "")
        case 401: (code, hint) = (.unauthorized, " (wrong user name or password for \(self.username), or not an administrator)")
        case 403: (code, hint) = (.forbidden, " (\(self.username) may not do this)")
        case 404: (code, hint) = (.notFound, "")
        default: (code, hint) = (.refused, "")
        }
        throw BrokerAdminClientError(
            code, "\(method) \(path) on \(self.endpoint): HTTP \(response.status): \(Self.reason(response))\(hint)", status: response.status)
    }

    /// The reason in an error answer: ours `{"error": text}`, RabbitMQ's `{"error": kind,
    /// "reason": text or a term}`.
    static func reason(_ response: Response) -> String {
        guard let answer = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            return response.text.isEmpty ? "no message" : response.text
        }
        let error = answer["error"] as? String
        switch answer["reason"] {
        case nil: return error ?? response.text
        case let text as String: return error.map { "\(text) (\($0))" } ?? text
        case let term?:
            let rendered = (try? JSONSerialization.data(withJSONObject: term)).map { String(decoding: $0, as: UTF8.self) } ?? "\(term)"
            return error.map { "\($0): \(rendered)" } ?? rendered
        }
    }

    /// A path segment, percent-encoded (vhost "/" becomes %2F).
    public static func segment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// `/api/` and the segments, each percent-encoded.
    public static func path(_ parts: String...) -> String {
        "/api/" + parts.map(Self.segment).joined(separator: "/")
    }

    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        var status = 0
        var body: [UInt8] = []

        init(promise: EventLoopPromise<Response>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head): self.status = Int(head.status.code)
            case .body(var chunk): self.body += chunk.readBytes(length: chunk.readableBytes) ?? []
            case .end: self.promise.succeed(Response(status: self.status, body: self.body))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.promise.fail(BrokerAdminClientError(.badAnswer, "the admin API closed the connection without an answer"))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.promise.fail(BrokerAdminClientError(.badAnswer, "the admin API's answer could not be read: \(error)"))
            context.close(promise: nil)
        }
    }
}

/// Why an admin API request failed: a stable `code`, the HTTP status when there was one,
/// and a message naming the endpoint, the request and the broker's reason.
public struct BrokerAdminClientError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { self.name }

        /// Nothing listens there (connection refused, no route, name not resolved).
        public static let unreachable = Code("unreachable")
        /// No connection or no answer within the client's timeout.
        public static let timedOut = Code("timedOut")
        /// 401: wrong credentials, or a user who may not use the API.
        public static let unauthorized = Code("unauthorized")
        /// 403.
        public static let forbidden = Code("forbidden")
        /// 404: no such user, vhost, queue or permission (or path).
        public static let notFound = Code("notFound")
        /// 400: a malformed body or pattern, or (RabbitMQ) an unknown user or vhost.
        public static let badRequest = Code("badRequest")
        /// Any other refusal (5xx included).
        public static let refused = Code("refused")
        /// An answer that is not what the API sends.
        public static let badAnswer = Code("badAnswer")
        /// The URL given to `BrokerAdminClient(url:)`.
        public static let badURL = Code("badURL")
    }

    public var code: Code
    public var description: String
    public var status: Int?

    public init(_ code: Code, _ description: String, status: Int? = nil) {
        self.code = code
        self.description = description
        self.status = status
    }
}
