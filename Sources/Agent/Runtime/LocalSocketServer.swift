import AMQPClient
import Foundation
import Logging
import Mesh
import MeshClient
import NIOCore
import NIOPosix
import Synchronization

/// The agent's local endpoint for recipes: a Unix socket (`agent.sock` in the state
/// directory, mode 0600) that forwards coordinator calls over the agent's existing bus
/// connection, so `conductor lock/signal/wait` in a job pays for no bus handshake.
///
/// Wire: one JSON object per line each way (docs/primitives.md, "Local socket").
/// Request `{"id": 1, "method": "lock_acquire", "arguments": {...}, "timeout_ms": 5000,
/// "scope": "default"}`; answer `{"id": 1, "result": {...}}` or `{"id": 1, "error":
/// {"code": "refused", "message": "...", "exception": {...}}}`.
///
/// Liveness is kept: an owned lock taken through the socket is owned by the agent's
/// connection (it ends if the agent dies) and the agent releases it as soon as the socket
/// connection that took it closes (the CLI process died or finished).
public final class LocalSocketServer: Sendable {
    public static let environmentVariable = "CONDUCTOR_AGENT_SOCKET"
    public static let fileName = "agent.sock"

    public let path: String
    private let channel: any Channel
    private let forwarder: LocalSocketForwarder

    private init(path: String, channel: any Channel, forwarder: LocalSocketForwarder) {
        self.path = path
        self.channel = channel
        self.forwarder = forwarder
    }

    /// Binds the socket in `directory` and exports its path as `CONDUCTOR_AGENT_SOCKET`
    /// into this process's environment, which every job and run inherits.
    public static func start(
        directory: String, connection: AMQPConnection, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> LocalSocketServer {
        let path = directory + "/" + Self.fileName
        let forwarder = LocalSocketForwarder(connection: connection, logger: logger)
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LocalSocketHandler(forwarder: forwarder))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        chmod(path, 0o600)
        setenv(Self.environmentVariable, path, 1)
        return LocalSocketServer(path: path, channel: channel, forwarder: forwarder)
    }

    public func stop() async {
        try? await self.channel.close()
        unlink(self.path)
        await self.forwarder.close()
    }
}

/// Forwards calls to coordinators (one bus client per scope, made on first use) and
/// remembers owned locks per socket connection to release them when it closes.
final class LocalSocketForwarder: Sendable {
    private let connection: AMQPConnection
    private let logger: Logger
    private let clients = Mutex<[String: Task<CoordinatorClient, any Error>]>([:])

    init(connection: AMQPConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    func client(scope: String) async throws -> CoordinatorClient {
        let task = self.clients.withLock { clients in
            if let existing = clients[scope] { return existing }
            let connection = self.connection
            let made = Task { try await CoordinatorClient.using(connection, scope: scope) }
            clients[scope] = made
            return made
        }
        do {
            return try await task.value
        } catch {
            self.clients.withLock { _ = $0.removeValue(forKey: scope) }
            throw error
        }
    }

    /// Answers one request line.
    func answer(_ line: [UInt8], session: LocalSocketSession) async -> MeshValue {
        let request: MeshValue
        do {
            request = try MeshValue(json: line)
        } catch {
            return Self.error(.null, code: "invalid-request", message: "not JSON: \(error.message)")
        }
        let id = request[path: "id"] ?? .null
        guard case .string(let method)? = request[path: "method"] else {
            return Self.error(id, code: "invalid-request", message: "'method' is missing")
        }
        var arguments: [String: MeshValue] = [:]
        if case .map(let map)? = request[path: "arguments"] { arguments = map }
        var timeout = Duration.seconds(30)
        if case .int(let milliseconds)? = request[path: "timeout_ms"], milliseconds > 0 { timeout = .milliseconds(milliseconds) }
        var scope = Coordinator.defaultScope
        if case .string(let named)? = request[path: "scope"] { scope = named }
        do {
            let client = try await self.client(scope: scope)
            // Owned locks are owned by the agent's connection; this session releases them if it closes.
            if method == Coordinator.Method.lockAcquire, arguments["owner"] != nil, arguments["owner"] != .null {
                arguments["owner"] = .string(client.ownerMarker)
            }
            let response = try await client.call(method, arguments: arguments, timeout: timeout)
            if let orphan = session.noteAnswered(method: method, arguments: arguments, response: response, scope: scope) {
                // Granted after the caller went away: nobody will use it.
                await self.releaseAll([orphan])
            }
            return .map(["id": id, "result": .map(response.arguments)])
        } catch let error as CoordinatorCallError {
            var body: [String: MeshValue] = ["code": .string(error.code.description), "message": .string(error.message)]
            if let exception = error.exception { body["exception"] = exception.value }
            return .map(["id": id, "error": .map(body)])
        } catch {
            return Self.error(id, code: "bus", message: "\(error)")
        }
    }

    /// Releases what a closed session still held.
    func releaseAll(_ held: [LocalSocketSession.Held]) async {
        for lock in held {
            guard let client = try? await self.client(scope: lock.scope) else { continue }
            _ = try? await client.release(lock: lock.lock, token: lock.token, holderKey: lock.holderKey)
            self.logger.info("local caller disconnected; lock released for it", metadata: ["lock": "\(lock.lock)", "token": "\(lock.token)"])
        }
    }

    func close() async {
        let all = self.clients.withLock { clients in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for task in all { await (try? task.value)?.close() }
    }

    static func error(_ id: MeshValue, code: String, message: String) -> MeshValue {
        .map(["id": id, "error": .map(["code": .string(code), "message": .string(message)])])
    }
}

/// One socket connection: the owned locks it holds.
final class LocalSocketSession: Sendable {
    /// An owned lock taken through this connection, with the holder key its grant passed
    /// back to the caller: the agent needs it only to release the lock if the caller dies.
    struct Held: Hashable, Sendable {
        var scope: String
        var lock: String
        var token: Int64
        var holderKey: String?
    }

    private let state = Mutex<(held: Set<Held>, closed: Bool)>(([], false))

    /// Tracks owned grants and releases. Returns a grant that arrived after the session
    /// closed: the caller must release it.
    func noteAnswered(method: String, arguments: [String: MeshValue], response: MethodResponse, scope: String) -> Held? {
        switch method {
        case Coordinator.Method.lockAcquire:
            guard arguments["owner"] != nil, let grant = try? response.decodeArguments(LockGrant.self) else { return nil }
            let held = Held(scope: scope, lock: grant.lock, token: grant.token, holderKey: grant.holderKey)
            return self.state.withLock { state in
                if state.closed { return held }
                state.held.insert(held)
                return nil
            }
        case Coordinator.Method.lockRelease:
            guard let result = try? response.decodeArguments(LockTokenResult.self) else { return nil }
            self.state.withLock { state in
                state.held = state.held.filter { !($0.scope == scope && $0.lock == result.lock && $0.token == result.token) }
            }
            return nil
        default:
            return nil
        }
    }

    /// What is still held, once: the session is over.
    func close() -> [Held] {
        self.state.withLock { state in
            state.closed = true
            defer { state.held = [] }
            return Array(state.held)
        }
    }
}

/// Splits the byte stream into lines, answers each in its own task, and hands the
/// session's locks back when the connection closes.
private final class LocalSocketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let forwarder: LocalSocketForwarder
    private let session = LocalSocketSession()
    private var pending: [UInt8] = []
    /// Refuses a peer that sends an endless line.
    private static let maximumLine = 1 << 20

    init(forwarder: LocalSocketForwarder) {
        self.forwarder = forwarder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.pending.append(contentsOf: buffer.readableBytesView)
        while let newline = self.pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Array(self.pending[..<newline])
            self.pending.removeSubrange(...newline)
            if line.isEmpty { continue }
            let channel = context.channel
            let forwarder = self.forwarder
            let session = self.session
            Task {
                let answer = await forwarder.answer(line, session: session)
                var out = channel.allocator.buffer(capacity: 256)
                out.writeBytes(answer.jsonBytes)
                out.writeInteger(UInt8(ascii: "\n"))
                channel.writeAndFlush(out, promise: nil)
            }
        }
        if self.pending.count > Self.maximumLine {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let held = self.session.close()
        if !held.isEmpty {
            let forwarder = self.forwarder
            Task { await forwarder.releaseAll(held) }
        }
        context.fireChannelInactive()
    }
}
