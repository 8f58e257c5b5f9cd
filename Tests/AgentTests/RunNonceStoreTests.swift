import Agent
import Foundation
import MeshClient
import Testing

/// The admitted nonces of signed `run` requests, on disk (`<state-dir>/run-nonces`).
@Suite("Run nonces on disk")
struct RunNonceStoreTests {
    static let now: Int64 = 1_800_000_000_000

    static func nonce(_ text: String, expiresIn milliseconds: Int64) -> RequestSignature.Verified {
        RequestSignature.Verified(nonce: text, expiresAt: Self.now + milliseconds)
    }

    static func mode(_ path: String) throws -> Int? {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
    }

    static func lines(_ path: String) -> [Substring] {
        let text = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return text.split(separator: "\n")
    }

    @Test func admittedNoncesSurviveARestartUntilTheyExpire() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try RunNonceStore(directory: directory.path, now: Self.now)
        #expect(store.admit(Self.nonce("a", expiresIn: 60_000), now: Self.now) == .admitted)
        #expect(store.admit(Self.nonce("short", expiresIn: 10), now: Self.now) == .admitted)
        // Any text is one line (JSON): a newline or quotes in a nonce do not split it.
        let odd = "x\n\"y\"\\"
        #expect(store.admit(Self.nonce(odd, expiresIn: 60_000), now: Self.now) == .admitted)
        #expect(store.admit(Self.nonce("a", expiresIn: 60_000), now: Self.now + 1) == .replayed)
        #expect(try Self.mode(store.path) == 0o600)
        #expect(Self.lines(store.path).count == 3)

        // A crash while appending leaves a torn last line: skipped (its run never started).
        let handle = try #require(FileHandle(forWritingAtPath: store.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"expires":18"#.utf8))
        try handle.close()

        let restarted = try RunNonceStore(directory: directory.path, now: Self.now + 100)
        #expect(restarted.unreadableLines == 1)
        #expect(restarted.count == 2, "the expired one is dropped")
        #expect(restarted.admit(Self.nonce("a", expiresIn: 60_000), now: Self.now + 100) == .replayed)
        #expect(restarted.admit(Self.nonce(odd, expiresIn: 60_000), now: Self.now + 100) == .replayed)
        #expect(restarted.admit(Self.nonce("short", expiresIn: 60_000), now: Self.now + 100) == .admitted)
        // Rewritten at start (expired and torn lines gone), still the owner's only.
        #expect(Self.lines(restarted.path).count == 3)
        #expect(try Self.mode(restarted.path) == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test func aFullStoreRefusesNewNoncesRatherThanForgetOne() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try RunNonceStore(directory: directory.path, capacity: 2, now: Self.now)
        #expect(store.admit(Self.nonce("a", expiresIn: 1000), now: Self.now) == .admitted)
        #expect(store.admit(Self.nonce("b", expiresIn: 1000), now: Self.now) == .admitted)
        #expect(store.admit(Self.nonce("c", expiresIn: 1000), now: Self.now) == .full(2))
        #expect(store.admit(Self.nonce("a", expiresIn: 1000), now: Self.now) == .replayed)
        let restarted = try RunNonceStore(directory: directory.path, capacity: 2, now: Self.now + 10)
        #expect(restarted.admit(Self.nonce("c", expiresIn: 1000), now: Self.now + 10) == .full(2))
        #expect(restarted.admit(Self.nonce("c", expiresIn: 1000), now: Self.now + 1001) == .admitted)
    }

    @Test func theFileIsRewrittenWithoutExpiredEntriesOnceItDoubled() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try RunNonceStore(directory: directory.path, rewriteFloor: 8, now: Self.now)
        for index in 0..<8 {
            #expect(store.admit(Self.nonce("n\(index)", expiresIn: 10), now: Self.now) == .admitted)
        }
        #expect(Self.lines(store.path).count == 8)
        // The ninth finds 8 lines, at least the floor and twice the 0 of the last rewrite.
        #expect(store.admit(Self.nonce("late", expiresIn: 60_000), now: Self.now + 20) == .admitted)
        #expect(Self.lines(store.path).count == 1)
        #expect(store.count == 1)
        #expect(try Self.mode(store.path) == 0o600)
        // Next rewrite when the file reaches the floor again (twice 1 is less).
        for index in 0..<7 {
            #expect(store.admit(Self.nonce("m\(index)", expiresIn: 10), now: Self.now + 20) == .admitted)
        }
        #expect(Self.lines(store.path).count == 8)
        #expect(store.admit(Self.nonce("later", expiresIn: 60_000), now: Self.now + 40) == .admitted)
        #expect(Self.lines(store.path).count == 2)
        #expect(store.admit(Self.nonce("late", expiresIn: 60_000), now: Self.now + 40) == .replayed)
    }
}
