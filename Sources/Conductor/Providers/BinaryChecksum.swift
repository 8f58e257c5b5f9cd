#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Synchronization

/// The SHA-256 of the `conductor` binary that remote agents must run: what the SSH
/// provider compares with a host's copy, what EC2 user data checks a download against, and
/// what the coordinator's `GET /agent/v1/conductor` announces. Hashed once per file
/// version (device, inode, size, modification time), read through a descriptor so that
/// what is hashed is what the caller then copies or serves, even if the path is replaced.
public struct BinaryChecksum: Sendable, Hashable {
    public var sha256: String
    public var size: Int

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private static let known = Mutex<[String: BinaryChecksum]>([:])

    /// Of an open descriptor (the caller keeps it; read with `pread`, from offset 0).
    public static func of(descriptor: Int32) throws(Failure) -> BinaryChecksum {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw Failure(description: "not a readable file")
        }
        let size = Int(status.st_size)
        let key = "\(status.st_dev)|\(status.st_ino)|\(size)|\(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
        if let cached = Self.known.withLock({ $0[key] }) { return cached }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        var offset = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
            if got == 0 { break }
            hasher.update(data: buffer[0..<got])
            offset += got
        }
        let sum = BinaryChecksum(sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(), size: size)
        Self.known.withLock { $0[key] = sum }
        return sum
    }

    /// Of the file at `path`.
    public static func of(path: String) throws(Failure) -> BinaryChecksum {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
        defer { _ = close(descriptor) }
        return try Self.of(descriptor: descriptor)
    }
}
