import Foundation
import Mesh
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Calls the coordinator through the local agent's socket (`LocalSocketServer`): no bus
/// handshake. One call at a time on the connection (blocking I/O on a Dispatch thread, so
/// the cooperative pool is never blocked); the connection itself is the liveness of the
/// owned locks taken through it.
public final class LocalSocketClient: CoordinatorCalling {
    public let path: String
    public let scope: String
    public var ownerMarker: String { "local" }
    private let descriptor: Int32
    private let io = NSLock()
    private let state = Mutex<(nextID: Int64, closed: Bool, buffered: [UInt8])>((1, false, []))

    private init(path: String, scope: String, descriptor: Int32) {
        self.path = path
        self.scope = scope
        self.descriptor = descriptor
    }

    /// Connects to the socket at `path`; throws `.bus` when nothing listens there.
    public static func connect(path: String, scope: String = Coordinator.defaultScope) throws(CoordinatorCallError) -> LocalSocketClient {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw CoordinatorCallError(.bus, "socket path \(path) is longer than \(capacity - 1) bytes") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        #if canImport(Glibc)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw CoordinatorCallError(.bus, "cannot create a socket: errno \(errno)") }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw CoordinatorCallError(.bus, "cannot connect to the agent socket \(path): \(reason)")
        }
        return LocalSocketClient(path: path, scope: scope, descriptor: descriptor)
    }

    public func call(_ method: String, arguments: [String: MeshValue], timeout: Duration) async throws(CoordinatorCallError) -> MethodResponse {
        let id = self.state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        let request = MeshValue.map([
            "id": .int(id), "method": .string(method), "arguments": .map(arguments),
            "timeout_ms": .int(timeout.wholeMilliseconds), "scope": .string(self.scope),
        ])
        // The agent answers by its own timeout; this one only guards against a stuck agent.
        let deadline = timeout + .seconds(5)
        let answer: Result<MeshValue, CoordinatorCallError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: self.exchange(request.jsonBytes + [UInt8(ascii: "\n")], id: id, deadline: deadline))
            }
        }
        let value = try answer.get()
        if case .map(let result)? = value[path: "result"] { return MethodResponse(arguments: result) }
        let code = value[path: "error.code"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "bus"
        let message = value[path: "error.message"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "unreadable answer from the agent"
        let exception = value[path: "error.exception"].flatMap { try? $0.decode(as: ExceptionBody.self) }
        let known: [String: CoordinatorCallError.Code] = [
            "no-coordinator": .noCoordinator, "timeout": .timeout, "refused": .refused, "invalid-reply": .invalidReply,
        ]
        throw CoordinatorCallError(known[code] ?? .bus, message, exception: exception)
    }

    public func close() async {
        let wasOpen = self.state.withLock { state in
            defer { state.closed = true }
            return !state.closed
        }
        if wasOpen { Glibc.close(self.descriptor) }
    }

    /// Writes the request and reads lines until the answer with this id (blocking).
    private func exchange(_ bytes: [UInt8], id: Int64, deadline: Duration) -> Result<MeshValue, CoordinatorCallError> {
        self.io.lock()
        defer { self.io.unlock() }
        if self.state.withLock({ $0.closed }) { return .failure(CoordinatorCallError(.bus, "the agent socket is closed")) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                return .failure(CoordinatorCallError(.bus, "the agent socket \(self.path) closed: \(String(cString: strerror(errno)))"))
            }
            offset += written
        }
        let end = ContinuousClock.now + deadline
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let line = self.takeLine() {
                guard let value = try? MeshValue(json: line) else { return .failure(CoordinatorCallError(.invalidReply, "unreadable answer from the agent")) }
                if value[path: "id"] == .int(id) { return .success(value) }
                continue
            }
            let remaining = ContinuousClock.now.duration(to: end)
            guard remaining > .zero else { return .failure(CoordinatorCallError(.timeout, "the local agent did not answer in time")) }
            var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining.wholeMilliseconds + 1, 60_000)))
            if ready < 0 && errno != EINTR { return .failure(CoordinatorCallError(.bus, "poll failed: errno \(errno)")) }
            if ready <= 0 { continue }
            let count = chunk.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return .failure(CoordinatorCallError(.bus, "the local agent closed the socket (agent stopped?)")) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failure(CoordinatorCallError(.bus, "reading the agent socket failed: \(String(cString: strerror(errno)))"))
            }
            self.state.withLock { $0.buffered.append(contentsOf: chunk[0..<count]) }
        }
    }

    private func takeLine() -> [UInt8]? {
        self.state.withLock { state in
            guard let newline = state.buffered.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            let line = Array(state.buffered[..<newline])
            state.buffered.removeSubrange(...newline)
            return line
        }
    }
}
