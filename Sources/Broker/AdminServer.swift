import AMQPProtocol
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Where the admin HTTP API and `/metrics` listen, and who may use the API.
///
/// The API (`/api/...`, JSON) takes HTTP basic authentication with a broker user's
/// name and password; the user must be an administrator: one of `administrators`, or,
/// when that is empty, any user the broker was started with (by default guest, who can
/// only log in from loopback anyway), or one tagged administrator in the data directory's
/// users.json (UserStore.swift). `/metrics` needs no credentials, like a Prometheus
/// exporter; the listener is on loopback by default. See docs/broker.md, "Admin".
public struct AdminConfiguration: Sendable, Hashable {
    public var host: String
    /// 0 picks a free port (see `BrokerServer.adminPort`); 15672 is RabbitMQ management's.
    public var port: Int
    public var administrators: [String]

    public init(host: String = "127.0.0.1", port: Int = 15672, administrators: [String] = []) {
        self.host = host
        self.port = port
        self.administrators = administrators
    }
}

/// Binds the admin HTTP listener on the broker's own loop, so requests read and change
/// broker state with plain calls, like connections do.
enum AdminServer {
    /// Administrators are the core's (`BrokerCore.userStore`).
    static func bind(_ configuration: AdminConfiguration, core: NIOLoopBoundBox<BrokerCore>, logger: Logger) async throws -> any Channel {
        let eventLoop = core.eventLoop
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 32)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        AdminHTTPHandler(api: AdminRequestHandler(core: core.value), logger: logger))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
            logger.info("admin API listening", metadata: ["host": "\(configuration.host)", "port": "\(channel.localAddress?.port ?? configuration.port)"])
            return channel
        } catch {
            throw BrokerServerError("cannot listen on \(configuration.host):\(configuration.port) (admin HTTP): \(error)")
        }
    }
}

/// One HTTP request: its answer.
struct AdminResponse {
    var status: HTTPResponseStatus
    var contentType = "application/json"
    var body: [UInt8]

    static func json<T: Encodable>(_ value: T, _ status: HTTPResponseStatus = .ok) -> AdminResponse {
        AdminResponse(status: status, body: AdminAPI.encode(value))
    }

    static func failure(_ status: HTTPResponseStatus, _ text: String) -> AdminResponse {
        .json(AdminAPI.Failure(error: text), status)
    }
}

/// The API itself: routes a request to broker state. Runs on the broker loop.
struct AdminRequestHandler {
    let core: BrokerCore

    var administrators: Set<String> {
        get { self.core.userStore.administrators }
        nonmutating set { self.core.userStore.administrators = newValue }
    }

    /// The answer; a change to users or permissions is answered once it is saved.
    func handle(method: HTTPMethod, path: String, authorization: String?, body: [UInt8]) -> EventLoopFuture<AdminResponse> {
        let parts = Self.segments(of: path)
        let response = self.respond(method: method, path: path, parts: parts, authorization: authorization, body: body)
        let changesUsers = (method == .PUT || method == .DELETE) && parts.count > 2 && ["users", "permissions", "topic-permissions"].contains(parts[1])
        guard changesUsers, response.status.code < 300, let path = self.core.userStore.path else {
            return self.core.eventLoop.makeSucceededFuture(response)
        }
        let logger = self.core.logger
        return self.core.userStore.save(self.core.userDocument(), on: self.core.eventLoop).map { response }.recover { error in
            logger.error("users and permissions not saved", metadata: ["broker_users_file": "\(path)", "error": "\(error)"])
            return .failure(.internalServerError, "changed in the running broker, but not saved to \(path): \(error); it is lost at restart unless a later change saves")
        }
    }

    /// The path's segments, percent-decoded, without the query.
    static func segments(of path: String) -> [String] {
        let segments = path.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/", omittingEmptySubsequences: true) } ?? []
        return segments.map { String($0).removingPercentEncoding ?? String($0) }
    }

    private func respond(method: HTTPMethod, path: String, parts: [String], authorization: String?, body: [UInt8]) -> AdminResponse {
        if method == .GET, parts == ["metrics"] {
            return AdminResponse(status: .ok, contentType: "text/plain; version=0.0.4", body: self.core.statistics.render(core: self.core))
        }
        guard parts.first == "api" else { return .failure(.notFound, "no such path: \(path)") }
        guard let user = self.authenticate(authorization) else {
            return .failure(.unauthorized, "the admin API needs HTTP basic authentication as an administrator")
        }
        _ = user
        let route = Array(parts.dropFirst())
        switch (method, route.count, route.first ?? "") {
        case (.GET, 1, "queues"): return .json(self.queues())
        case (.GET, 1, "exchanges"): return .json(self.exchanges())
        case (.GET, 1, "bindings"): return .json(self.bindings())
        case (.GET, 1, "connections"): return .json(self.connections())
        case (.GET, 1, "channels"): return .json(self.channels())
        case (.GET, 1, "users"): return .json(self.users())
        case (.PUT, 2, "users"): return self.addUser(route[1], body)
        case (.DELETE, 2, "users"): return self.deleteUser(route[1])
        case (.GET, 3, "users") where route[2] == "permissions": return self.permissions(user: route[1])
        case (.GET, 3, "users") where route[2] == "topic-permissions": return self.topicPermissions(user: route[1])
        case (.GET, 1, "permissions"): return .json(self.permissions())
        case (.GET, 3, "permissions"): return self.permission(vhost: route[1], user: route[2])
        case (.PUT, 3, "permissions"): return self.setPermissions(vhost: route[1], user: route[2], body)
        case (.DELETE, 3, "permissions"): return self.clearPermissions(vhost: route[1], user: route[2])
        case (.GET, 1, "topic-permissions"): return .json(self.topicPermissions())
        case (.GET, 3, "topic-permissions"): return self.topicPermissions(vhost: route[1], user: route[2])
        case (.PUT, 3, "topic-permissions"): return self.setTopicPermission(vhost: route[1], user: route[2], body)
        case (.DELETE, 3, "topic-permissions"): return self.clearTopicPermissions(vhost: route[1], user: route[2])
        case (.DELETE, 4, "queues") where route[3] == "contents": return self.purge(vhost: route[1], queue: route[2])
        case (.DELETE, 3, "queues"): return self.deleteQueue(vhost: route[1], queue: route[2])
        default: return .failure(.notFound, "no such API call: \(method) \(path)")
        }
    }

    private func authenticate(_ authorization: String?) -> String? {
        guard let authorization, authorization.hasPrefix("Basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        else { return nil }
        let name = String(decoded[..<colon]), password = String(decoded[decoded.index(after: colon)...])
        guard let user = self.core.authenticator.users[name], user.verify(password: password),
            self.administrators.contains(name)
        else { return nil }
        return name
    }

    // MARK: - Listing

    private var sortedVhosts: [VirtualHost] { self.core.vhosts.keys.sorted().compactMap { self.core.vhosts[$0] } }

    private func queues() -> [AdminAPI.QueueInfo] {
        self.sortedVhosts.flatMap { vhost in
            vhost.queues.keys.sorted().compactMap { vhost.queues[$0] }.map { queue in
                AdminAPI.QueueInfo(
                    vhost: vhost.name, name: queue.name, durable: queue.durable, autoDelete: queue.autoDelete,
                    exclusive: queue.exclusiveOwner != nil, messagesReady: queue.messages.count,
                    messagesUnacknowledged: queue.unackedCount, consumers: queue.consumers.count
                )
            }
        }
    }

    private func exchanges() -> [AdminAPI.ExchangeInfo] {
        self.sortedVhosts.flatMap { vhost in
            vhost.exchanges.keys.sorted().compactMap { vhost.exchanges[$0] }.map { exchange in
                AdminAPI.ExchangeInfo(
                    vhost: vhost.name, name: exchange.name, type: "\(exchange.type)", durable: exchange.durable,
                    autoDelete: exchange.autoDelete, internal: exchange.isInternal
                )
            }
        }
    }

    private func bindings() -> [AdminAPI.BindingInfo] {
        self.sortedVhosts.flatMap { vhost in
            // The default exchange's implicit binding of every queue, as rabbitmqctl lists it.
            let implicit = vhost.queues.keys.sorted().map {
                AdminAPI.BindingInfo(vhost: vhost.name, source: "", destination: $0, destinationType: "queue", routingKey: $0)
            }
            let explicit = vhost.exchanges.keys.sorted().compactMap { vhost.exchanges[$0] }.flatMap { exchange in
                exchange.bindings.map { binding in
                    let type: String
                    switch binding.destination {
                    case .queue: type = "queue"
                    case .exchange: type = "exchange"
                    }
                    return AdminAPI.BindingInfo(vhost: vhost.name, source: exchange.name, destination: binding.destination.name, destinationType: type, routingKey: binding.key)
                }
            }
            return implicit + explicit
        }
    }

    private var sortedConnections: [BrokerConnection] {
        self.core.connections.values.sorted { $0.connectedAt < $1.connectedAt }
    }

    private func connections() -> [AdminAPI.ConnectionInfo] {
        self.sortedConnections.map { connection in
            let properties = connection.clientProperties
            let state = connection.isOpen ? (connection.isBlockedByFlow ? "blocked" : "running") : "starting"
            let elapsed = (ContinuousClock.now - connection.connectedAt).components
            return AdminAPI.ConnectionInfo(
                name: connection.peer, peer: connection.peer, user: connection.user, vhost: connection.vhost?.name,
                tls: connection.isTLS, state: state, channels: connection.openChannels.count,
                clientProduct: properties["product"]?.stringValue, connectionName: properties["connection_name"]?.stringValue,
                messagesPublished: connection.publishedCount, messagesDelivered: connection.deliveredCount,
                connectedSeconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            )
        }
    }

    private func channels() -> [AdminAPI.ChannelInfo] {
        self.sortedConnections.flatMap { connection in
            connection.openChannels.map { channel in
                let mode: String
                switch channel.mode {
                case .normal: mode = "normal"
                case .confirm: mode = "confirm"
                case .transactional: mode = "transactional"
                }
                return AdminAPI.ChannelInfo(
                    connection: connection.peer, number: Int(channel.id), user: connection.user, vhost: connection.vhost?.name,
                    consumers: channel.consumers.count, messagesUnacknowledged: channel.unackedLive, mode: mode
                )
            }
        }
    }

    // MARK: - Queues

    private func purge(vhost: String, queue name: String) -> AdminResponse {
        guard let queue = self.core.vhosts[vhost]?.queues[name] else { return .failure(.notFound, "no queue '\(name)' in vhost '\(vhost)'") }
        return .json(AdminAPI.Purged(messages: queue.purge()))
    }

    private func deleteQueue(vhost: String, queue name: String) -> AdminResponse {
        guard let queue = self.core.vhosts[vhost]?.queues[name] else { return .failure(.notFound, "no queue '\(name)' in vhost '\(vhost)'") }
        let messages = queue.messages.count
        for consumer in queue.removeAllConsumers() {
            consumer.channel.consumerCancelledByServer(consumer)
        }
        queue.vhost.deleteQueue(queue)
        return .json(AdminAPI.Purged(messages: messages))
    }
}

/// HTTP/1.1 framing for `AdminRequestHandler`: collects a request (body up to 1 MiB),
/// answers it, keeps the connection alive when asked to.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: AdminRequestHandler
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(api: AdminRequestHandler, logger: Logger) {
        self.api = api
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = []
            self.tooLarge = false
        case .body(var chunk):
            if self.body.count + chunk.readableBytes > 1 << 20 {
                self.tooLarge = true
            } else {
                self.body += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            let response = self.tooLarge
                ? context.eventLoop.makeSucceededFuture(AdminResponse.failure(.payloadTooLarge, "request body over 1 MiB"))
                : self.api.handle(method: head.method, path: head.uri, authorization: head.headers.first(name: "authorization"), body: self.body)
            self.body = []
            // Changes to users are answered after users.json is on disk (off the loop).
            response.assumeIsolated().whenSuccess { response in
                self.respond(response, keepAlive: head.isKeepAlive, version: head.version, context: context)
            }
        }
    }

    private func respond(_ response: AdminResponse, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: "\(response.body.count)")
        if response.status == .unauthorized {
            headers.add(name: "www-authenticate", value: "Basic realm=\"conductor broker\"")
        }
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension AdminHTTPHandler: Sendable {}
