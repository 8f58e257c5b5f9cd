import Conductor
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Synchronization

/// `GET /agent/v1/conductor`: the agent binary (by default the running one,
/// `/proc/self/exe`), streamed from one open descriptor, so the bytes sent are the bytes
/// hashed even when the file is replaced meanwhile. Its SHA-256 (`X-Conductor-SHA256`)
/// is computed once per file version, off the cooperative pool.
struct AgentBinary: Sendable {
    static let checksumHeader = HTTPField.Name("X-Conductor-SHA256")!
    private static let chunk = 256 * 1024

    let path: String

    func response(bodyless: Bool) async throws -> Response {
        let descriptor = open(self.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ConfigServerError("cannot read the agent binary \(self.path): \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw ConfigServerError("cannot read the agent binary \(self.path)")
        }
        let size = Int(status.st_size)
        let checksum: String
        do {
            checksum = try await NIOThreadPool.singleton.runIfActive { try BinaryChecksum.of(descriptor: descriptor).sha256 }
        } catch {
            close(descriptor)
            throw error
        }
        let headers: HTTPFields = [
            .contentType: "application/octet-stream", .contentLength: String(size), Self.checksumHeader: checksum,
            .contentDisposition: "attachment; filename=\"conductor\"",
        ]
        if bodyless {
            close(descriptor)
            return Response(status: .ok, headers: headers, body: ResponseBody())
        }
        let owned = Descriptor(descriptor)
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: size) { writer in
                defer { owned.release() }
                var offset = 0
                while offset < size {
                    let from = offset
                    let buffer = try await NIOThreadPool.singleton.runIfActive { () throws -> ByteBuffer in
                        try Self.read(owned.value, at: from, count: min(Self.chunk, size - from))
                    }
                    guard buffer.readableBytes > 0 else { throw ConfigServerError("the agent binary ended early") }
                    offset += buffer.readableBytes
                    try await writer.write(buffer)
                }
                try await writer.finish(nil)
            })
    }

    private static func read(_ descriptor: Int32, at offset: Int, count: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
            while true {
                let got = pread(descriptor, pointer.baseAddress, count, off_t(offset))
                if got >= 0 { return got }
                if errno == EINTR { continue }
                failure = errno
                return 0
            }
        }
        if failure != 0 { throw ConfigServerError("cannot read the agent binary: \(String(cString: strerror(failure)))") }
        return buffer
    }
}

/// An open descriptor the response body closes when it is done.
private final class Descriptor: Sendable {
    let value: Int32
    private let closed = Mutex(false)

    init(_ value: Int32) { self.value = value }

    func release() {
        guard !self.closed.withLock({ closed in defer { closed = true }; return closed }) else { return }
        _ = close(self.value)
    }

    deinit { self.release() }
}
