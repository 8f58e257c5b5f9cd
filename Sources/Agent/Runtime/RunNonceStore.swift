import Foundation
import Mesh
import MeshClient
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The nonces of the signed `run` requests this agent admitted, each with its expiry, kept
/// in `<state-dir>/run-nonces` so that a restart does not reopen the replay window: a
/// captured signed `run` stays refused until its signature expires, however often the agent
/// restarts in between.
///
/// The file holds one JSON object per line, `{"expires":<ms since 1970>,"nonce":"..."}`
/// (JSON, so any nonce text fits on a line), mode 0600. A nonce is appended and synced to
/// disk before its command runs; a crash while appending leaves at most a torn last line,
/// whose run never started, and reading skips it. At start the file is read, expired
/// entries are dropped and the rest written to a new file renamed into place (so a crash
/// leaves the old or the new one); the same happens while running whenever the file has
/// doubled since (and holds at least `rewriteFloor` lines, 1024), so appending stays cheap
/// on average.
///
/// Bounded by `ReplayGuard`: with `capacity` unexpired nonces remembered, a new `run` is
/// refused (`.full`) until some expire, rather than forgetting one that could then be
/// replayed. Signatures last at most a day and five minutes, so entries do too.
public final class RunNonceStore: Sendable {
    public enum Admission: Sendable, Hashable {
        /// New, and on disk: the run may go ahead.
        case admitted
        /// Seen before and not expired.
        case replayed
        /// This many unexpired nonces are remembered already, the capacity.
        case full(Int)
        /// It could not be written down; the run must not go ahead (after a restart it
        /// could be replayed). The reason, for the refusal and the log.
        case notRecorded(String)
    }

    public static let fileName = "run-nonces"

    public let path: String
    /// Lines of the file that could not be read when it was loaded (a torn last line after
    /// a crash, or damage): the agent logs them.
    public let unreadableLines: Int

    private struct State {
        var replays: ReplayGuard
        /// Lines in the file now (live and expired), and just after it was last rewritten.
        var lines: Int
        var linesWhenRewritten: Int
    }

    private let state: Mutex<State>
    private let rewriteFloor: Int

    /// Loads the nonces in `directory`, drops the expired ones and rewrites the file.
    public init(directory: String, capacity: Int = 100_000, rewriteFloor: Int = 1024, now: Int64 = RequestSigner.now()) throws(AgentError) {
        self.path = directory + "/" + Self.fileName
        self.rewriteFloor = rewriteFloor
        var expiries: [String: Int64] = [:]
        var unreadable = 0
        if FileManager.default.fileExists(atPath: self.path) {
            guard let data = FileManager.default.contents(atPath: self.path) else {
                throw AgentError(.stateDirectory, "cannot read \(self.path), the run requests this agent admitted (replay protection)")
            }
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                guard let entry = try? MeshValue(json: Array(line)), case .string(let nonce)? = entry[path: "nonce"],
                    case .int(let expires)? = entry[path: "expires"]
                else {
                    unreadable += 1
                    continue
                }
                if expires > now { expiries[nonce] = max(expires, expiries[nonce] ?? expires) }
            }
            try Self.replace(self.path, with: Self.lines(expiries))
        }
        self.unreadableLines = unreadable
        self.state = Mutex(State(replays: ReplayGuard(capacity: capacity, remembering: expiries), lines: expiries.count, linesWhenRewritten: expiries.count))
    }

    /// How many unexpired nonces are remembered.
    public var count: Int { self.state.withLock { $0.replays.expiries.count } }

    /// Admits `verified` once: it is on disk before this returns `.admitted`.
    public func admit(_ verified: RequestSignature.Verified, now: Int64) -> Admission {
        self.state.withLock { state in
            switch state.replays.admit(verified, now: now) {
            case .replayed:
                return .replayed
            case .full:
                return .full(state.replays.expiries.count)
            case .admitted:
                break
            }
            do throws(AgentError) {
                if state.lines >= max(self.rewriteFloor, 2 * state.linesWhenRewritten) {
                    state.replays.dropExpired(now: now)
                    try Self.replace(self.path, with: Self.lines(state.replays.expiries))
                    state.lines = state.replays.expiries.count
                    state.linesWhenRewritten = state.lines
                } else {
                    try Self.append(self.path, Self.line(nonce: verified.nonce, expires: verified.expiresAt))
                    state.lines += 1
                }
                return .admitted
            } catch {
                state.replays.forget(verified.nonce)
                return .notRecorded(error.message)
            }
        }
    }

    // MARK: - The file

    private static func line(nonce: String, expires: Int64) -> [UInt8] {
        MeshValue.map(["expires": .int(expires), "nonce": .string(nonce)]).jsonBytes + [UInt8(ascii: "\n")]
    }

    private static func lines(_ expiries: [String: Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (nonce, expires) in expiries.sorted(by: { $0.value < $1.value }) {
            bytes += Self.line(nonce: nonce, expires: expires)
        }
        return bytes
    }

    private static func append(_ path: String, _ bytes: [UInt8]) throws(AgentError) {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.failure("cannot open", path) }
        defer { close(descriptor) }
        try Self.writeAll(bytes, to: descriptor, path: path)
        guard fsync(descriptor) == 0 else { throw Self.failure("cannot sync", path) }
    }

    /// Writes a new file beside `path` (0600), syncs it and renames it into place.
    private static func replace(_ path: String, with bytes: [UInt8]) throws(AgentError) {
        let temporary = path + ".tmp-" + UUID().uuidString.prefix(8)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.failure("cannot create", temporary) }
        do throws(AgentError) {
            defer { close(descriptor) }
            try Self.writeAll(bytes, to: descriptor, path: temporary)
            guard fsync(descriptor) == 0 else { throw Self.failure("cannot sync", temporary) }
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let failure = Self.failure("cannot rename into place", temporary)
            unlink(temporary)
            throw failure
        }
        // The rename itself must reach the disk too.
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(AgentError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw Self.failure("cannot write", path)
            }
            offset += written
        }
    }

    private static func failure(_ what: String, _ path: String) -> AgentError {
        AgentError(.stateDirectory, "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
