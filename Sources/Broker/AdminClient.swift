import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client for the broker's admin API (what `conductor broker
/// list-queues` and friends use): one request per connection, bounded in time.
public struct BrokerAdminClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var text: String { String(decoding: self.body, as: UTF8.self) }
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

    /// Sends `method path` with basic authentication and an optional JSON body.
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
            promise.fail(error)
            throw BrokerAdminClientError("cannot reach the broker's admin API at \(self.host):\(self.port) (is it started with --http-port?): \(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "\(self.host):\(self.port)")
        headers.add(name: "authorization", value: "Basic " + Data("\(self.username):\(self.password)".utf8).base64EncodedString())
        headers.add(name: "connection", value: "close")
        headers.add(name: "content-length", value: "\(body?.count ?? 0)")
        if body != nil { headers.add(name: "content-type", value: "application/json") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeout = channel.eventLoop.scheduleTask(in: self.timeout) {
            promise.fail(BrokerAdminClientError("no answer from \(self.host):\(self.port) in time"))
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        let response = try await promise.futureResult.get()
        try? await channel.close()
        return response
    }

    /// `request`, decoding a 2xx JSON answer; any other status is an error with the
    /// broker's message.
    public func call<T: Decodable>(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, as type: T.Type) async throws -> T {
        let response = try await self.request(method, path, body: body)
        guard (200..<300).contains(response.status) else {
            let message = (try? AdminAPI.decode(AdminAPI.Failure.self, from: response.body).error) ?? response.text
            throw BrokerAdminClientError("HTTP \(response.status): \(message)", status: response.status)
        }
        do {
            return try AdminAPI.decode(type, from: response.body)
        } catch {
            throw BrokerAdminClientError("unexpected answer from the admin API: \(response.text)")
        }
    }

    /// A path segment, percent-encoded (vhost "/" becomes %2F).
    public static func segment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
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
            self.promise.fail(BrokerAdminClientError("the admin API closed the connection without an answer"))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.promise.fail(error)
            context.close(promise: nil)
        }
    }
}

public struct BrokerAdminClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var status: Int?
    public init(_ description: String, status: Int? = nil) {
        self.description = description
        self.status = status
    }
}
