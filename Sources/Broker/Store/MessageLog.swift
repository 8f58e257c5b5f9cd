import Glibc
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The files of a data directory, written by one thread of their own so the broker's
/// event loop never waits for the disk. The loop hands over batches of encoded records
/// (`submit`); the writer writes whatever has accumulated, fsyncs once for all of it
/// (group commit: everything that arrives during one fsync shares the next), then reports
/// the highest ticket now on disk. Layout (see docs/broker.md, "Persistence"):
///
///     DIR/LOCK                  flock'd while a broker uses the directory
///     DIR/meta.log              durable exchanges, queues, bindings (records)
///     DIR/segments/NNNNNNNN.log persistent messages and their removals (records)
final class MessageLog: @unchecked Sendable {
    enum Operation {
        /// Records for the current segment.
        case log(ByteBuffer)
        /// Records for meta.log.
        case meta(ByteBuffer)
        /// Close the current segment and start `number`.
        case roll(UInt32)
        /// Remove a segment whose messages are all gone (after this batch is on disk).
        case delete(UInt32)
    }

    private struct Shared {
        var operations: [Operation] = []
        var ticket: UInt64 = 0
        var isWriting = false
        var isClosed = false
        var failure: String?
        var idle: [CheckedContinuation<Void, Never>] = []
    }

    let directory: String
    private let shared = NIOLockedValueBox(Shared())
    /// Created by `start`, so a directory that fails to open leaves no thread behind.
    private var pool: NIOThreadPool?
    private let onDurable: @Sendable (UInt64) -> Void
    private let onFailure: @Sendable (String) -> Void
    // Touched only by the writer thread (and by `open` before it starts).
    private var segmentFD: Int32 = -1
    private var metaFD: Int32 = -1
    private var lockFD: Int32 = -1

    var segmentsDirectory: String { self.directory + "/segments" }

    static func segmentPath(_ directory: String, _ number: UInt32) -> String {
        directory + "/segments/" + String(format: "%08u.log", number)
    }

    init(directory: String, onDurable: @escaping @Sendable (UInt64) -> Void, onFailure: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        self.onDurable = onDurable
        self.onFailure = onFailure
    }

    // MARK: - Opening (before the broker serves)

    /// Takes the directory's lock, creating it if needed; fails if another broker has it.
    func lock() throws(StoreError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: self.directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw StoreError("data directory \(self.directory) exists and is not a directory")
        }
        guard access(self.directory, F_OK) != 0 || access(self.directory, W_OK) == 0 else {
            throw StoreError("data directory \(self.directory) is not writable")
        }
        do {
            try FileManager.default.createDirectory(atPath: self.segmentsDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreError("cannot create data directory \(self.directory): \(error.localizedDescription)")
        }
        let fd = Glibc.open(self.directory + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot open \(self.directory)/LOCK: \(Self.errnoText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw StoreError("data directory \(self.directory) is in use by another broker (LOCK is held)")
        }
        self.lockFD = fd
    }

    /// Reads a whole file (nil if it does not exist).
    static func read(_ path: String) throws(StoreError) -> ByteBuffer? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw StoreError("cannot read \(path)") }
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        return buffer
    }

    /// Segment numbers present, oldest first.
    func segmentNumbers() -> [UInt32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: self.segmentsDirectory)) ?? []
        return names.compactMap { name in name.hasSuffix(".log") ? UInt32(name.dropLast(4)) : nil }.sorted()
    }

    /// Replaces meta.log with `snapshot` (write, fsync, rename) and opens it for appending;
    /// opens a fresh segment `number`; removes the segments listed.
    func start(metaSnapshot snapshot: ByteBuffer, segment number: UInt32, deleting obsolete: [UInt32]) throws(StoreError) {
        var snapshot = snapshot
        RecordFraming.sealRecords(in: &snapshot)
        let temporary = self.directory + "/meta.log.tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot write \(temporary): \(Self.errnoText())") }
        let written = Self.writeAll(fd, snapshot)
        let synced = fsync(fd) == 0
        Glibc.close(fd)
        guard written, synced, rename(temporary, self.directory + "/meta.log") == 0 else {
            throw StoreError("cannot write \(self.directory)/meta.log: \(Self.errnoText())")
        }
        self.metaFD = Glibc.open(self.directory + "/meta.log", O_WRONLY | O_APPEND | O_CLOEXEC)
        guard self.metaFD >= 0 else { throw StoreError("cannot open \(self.directory)/meta.log: \(Self.errnoText())") }
        self.segmentFD = try Self.createSegment(self.directory, number)
        for old in obsolete { unlink(Self.segmentPath(self.directory, old)) }
        Self.syncDirectory(self.segmentsDirectory)
        Self.syncDirectory(self.directory)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        self.pool = pool
    }

    /// Shortens a file to its valid prefix (a record torn by a crash).
    static func truncate(_ path: String, to length: Int) {
        Glibc.truncate(path, off_t(length))
    }

    private static func createSegment(_ directory: String, _ number: UInt32) throws(StoreError) -> Int32 {
        let path = Self.segmentPath(directory, number)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(Self.errnoText())") }
        return fd
    }

    // MARK: - Writing (any thread hands over, the pool's thread writes)

    /// Hands over operations; `ticket` is the highest record ticket among them.
    func submit(_ operations: [Operation], ticket: UInt64) {
        let startWriter = self.shared.withLockedValue { shared -> Bool in
            guard !shared.isClosed else { return false }
            shared.operations.append(contentsOf: operations)
            shared.ticket = Swift.max(shared.ticket, ticket)
            if shared.isWriting { return false }
            shared.isWriting = true
            return true
        }
        if startWriter { self.pool?.submit { _ in self.drain() } }
    }

    private func drain() {
        while true {
            let next = self.shared.withLockedValue { shared -> ([Operation], UInt64, [CheckedContinuation<Void, Never>])? in
                if shared.operations.isEmpty || shared.failure != nil {
                    shared.isWriting = false
                    let idle = shared.idle
                    shared.idle.removeAll()
                    return ([], 0, idle)
                }
                let operations = shared.operations
                shared.operations.removeAll(keepingCapacity: true)
                return (operations, shared.ticket, [])
            }
            guard let (operations, ticket, idle) = next else { return }
            if operations.isEmpty {
                for waiter in idle { waiter.resume() }
                return
            }
            do {
                try self.write(operations)
                self.onDurable(ticket)
            } catch {
                self.shared.withLockedValue { $0.failure = error.description }
                self.onFailure(error.description)
            }
        }
    }

    private func write(_ operations: [Operation]) throws(StoreError) {
        var segmentDirty = false
        var metaDirty = false
        var deletions: [UInt32] = []
        for operation in operations {
            switch operation {
            case .log(var records):
                RecordFraming.sealRecords(in: &records)
                guard Self.writeAll(self.segmentFD, records) else { throw StoreError("writing a segment failed: \(Self.errnoText())") }
                segmentDirty = true
            case .meta(var records):
                RecordFraming.sealRecords(in: &records)
                guard Self.writeAll(self.metaFD, records) else { throw StoreError("writing meta.log failed: \(Self.errnoText())") }
                metaDirty = true
            case .roll(let number):
                guard fsync(self.segmentFD) == 0 else { throw StoreError("fsync of a segment failed: \(Self.errnoText())") }
                Glibc.close(self.segmentFD)
                self.segmentFD = try Self.createSegment(self.directory, number)
                Self.syncDirectory(self.segmentsDirectory)
                segmentDirty = false
            case .delete(let number):
                deletions.append(number)
            }
        }
        // Metadata first: a message on disk must never name a queue that is not.
        if metaDirty, fsync(self.metaFD) != 0 { throw StoreError("fsync of meta.log failed: \(Self.errnoText())") }
        if segmentDirty, fdatasync(self.segmentFD) != 0 { throw StoreError("fsync of a segment failed: \(Self.errnoText())") }
        if !deletions.isEmpty {
            for number in deletions { unlink(Self.segmentPath(self.directory, number)) }
            Self.syncDirectory(self.segmentsDirectory)
        }
    }

    /// Writes what is pending, then closes the files and releases the lock.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let wait = self.shared.withLockedValue { shared -> Bool in
                shared.isClosed = true
                guard shared.isWriting else { return false }
                shared.idle.append(continuation)
                return true
            }
            if !wait { continuation.resume() }
        }
        try? await self.pool?.shutdownGracefully()
        if self.segmentFD >= 0 { fsync(self.segmentFD); Glibc.close(self.segmentFD) }
        if self.metaFD >= 0 { Glibc.close(self.metaFD) }
        if self.lockFD >= 0 { Glibc.close(self.lockFD) }
        self.segmentFD = -1
        self.metaFD = -1
        self.lockFD = -1
    }

    // MARK: - POSIX helpers

    private static func writeAll(_ fd: Int32, _ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let result = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += result
            }
            return true
        }
    }

    private static func syncDirectory(_ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        Glibc.close(fd)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A data directory that cannot be used: what and why, for the operator.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
