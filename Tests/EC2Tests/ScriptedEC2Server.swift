import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP server on 127.0.0.1:0 that answers the n-th request (1-based) as a script
/// says, or never, and keeps what it was sent: enough to see retries, timeouts and
/// signatures without EC2.
final class ScriptedEC2Server: Sendable {
    struct Received: Sendable {
        var head: HTTPRequestHead
        var body: String
    }

    enum Reply: Sendable {
        case answer(status: HTTPResponseStatus, body: String)
        /// Read the request and say nothing, holding the connection open.
        case silence
    }

    let port: Int
    private let channel: any Channel
    private let log: Log

    var url: URL { URL(string: "http://127.0.0.1:\(self.port)/")! }
    var requests: [Received] { self.log.received.withLock { $0 } }

    private init(port: Int, channel: any Channel, log: Log) {
        self.port = port
        self.channel = channel
        self.log = log
    }

    static func start(_ script: @escaping @Sendable (_ number: Int, _ request: Received) -> Reply) async throws -> ScriptedEC2Server {
        let log = Log()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(log: log, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedEC2Server(port: channel.localAddress?.port ?? 0, channel: channel, log: log)
    }

    /// Stops listening and waits until the port is closed.
    func stop() async {
        try? await self.channel.close()
    }

    /// Stops listening without waiting (for `defer`).
    func close() {
        self.channel.close(promise: nil)
    }

    /// Shared between the server and its connections' handlers.
    final class Log: Sendable {
        let received = Mutex<[Received]>([])
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let log: Log
        let script: @Sendable (Int, Received) -> Reply
        var head: HTTPRequestHead?
        var body = ""

        init(log: Log, script: @escaping @Sendable (Int, Received) -> Reply) {
            self.log = log
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.body = ""
            case .body(let buffer):
                self.body += String(buffer: buffer)
            case .end:
                guard let head = self.head else { return }
                let request = Received(head: head, body: self.body)
                let number = self.log.received.withLock { received in
                    received.append(request)
                    return received.count
                }
                switch self.script(number, request) {
                case .silence:
                    break
                case .answer(let status, let text):
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: "text/xml;charset=UTF-8")
                    headers.add(name: "Content-Length", value: "\(text.utf8.count)")
                    context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}

/// EC2's answers, as its documentation shows them, for the scripted server.
enum EC2Answers {
    static func error(_ code: String, _ message: String, requestID: String = "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE") -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>\(code)</Code><Message>\(message)</Message></Error></Errors><RequestID>\(requestID)</RequestID></Response>
        """
    }

    static let describeOneInstance = """
        <?xml version="1.0" encoding="UTF-8"?>
        <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
            <reservationSet>
                <item>
                    <reservationId>r-1234567890abcdef0</reservationId>
                    <ownerId>123456789012</ownerId>
                    <instancesSet>
                        <item>
                            <instanceId>i-1234567890abcdef0</instanceId>
                            <imageId>ami-bff32ccc</imageId>
                            <instanceState><code>16</code><name>running</name></instanceState>
                            <privateDnsName>ip-192-168-1-88.eu-west-1.compute.internal</privateDnsName>
                            <keyName>my_keypair</keyName>
                            <instanceType>t2.micro</instanceType>
                            <launchTime>2018-05-08T16:46:19.000Z</launchTime>
                            <placement><availabilityZone>eu-west-1c</availabilityZone><tenancy>default</tenancy></placement>
                            <subnetId>subnet-56f5f633</subnetId>
                            <vpcId>vpc-11112222</vpcId>
                            <privateIpAddress>192.168.1.88</privateIpAddress>
                            <ipAddress>54.194.252.215</ipAddress>
                            <tagSet>
                                <item><key>Name</key><value>Server_1</value></item>
                                <item><key>conductor:deployment</key><value>web-1</value></item>
                                <item><key>empty</key><value/></item>
                            </tagSet>
                        </item>
                    </instancesSet>
                </item>
            </reservationSet>
        </DescribeInstancesResponse>
        """
}
