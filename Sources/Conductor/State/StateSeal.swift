#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation

/// Encrypts what the state file holds that must stay secret (generated secrets, the
/// agents' logins, job payloads with their resolved parameters) with a key kept in a
/// file of its own, so a copy of `state.sqlite` (a backup, a file shared to debug) reveals
/// none of them. AES-256-GCM; each value gets a fresh nonce. docs/state.md, "Secrets".
///
/// The key file (default `<state-dir>/state.key`, or `--state-key`) holds 32 random bytes,
/// mode 0600, made on first use. Values written before sealing existed are read as they are
/// and sealed when the store opens.
public struct StateSeal: Sendable {
    public let keyFile: String
    /// The raw key (`SymmetricKey` is not Sendable; one is made per use).
    private let keyBytes: Data

    static let prefix = "sealed:v1:"

    /// Reads the key file, making it when there is none.
    public init(keyFile: String) throws(StateStoreError) {
        self.keyFile = keyFile
        self.keyBytes = try Self.loadOrCreate(keyFile)
    }

    public static func defaultKeyFile(databasePath: String) -> String {
        let directory = (databasePath as NSString).deletingLastPathComponent
        return (directory.isEmpty ? "." : directory) + "/state.key"
    }

    /// Whether `text` was written by `seal`.
    static func isSealed(_ text: String) -> Bool { text.hasPrefix(Self.prefix) }

    func seal(_ text: String) throws(StateStoreError) -> String {
        do {
            guard let combined = try AES.GCM.seal(Data(text.utf8), using: SymmetricKey(data: self.keyBytes)).combined else {
                throw StateStoreError(.schema, "AES-GCM gave no combined box")
            }
            return Self.prefix + combined.base64EncodedString()
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError(.schema, "cannot seal a secret: \(error)")
        }
    }

    /// The plain text of a sealed value; an unsealed one (written before sealing) as it is.
    func open(_ text: String) throws(StateStoreError) -> String {
        guard Self.isSealed(text) else { return text }
        guard let combined = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))) else {
            throw StateStoreError(.schema, "a sealed value in the state file is damaged")
        }
        do {
            let opened = try AES.GCM.open(try AES.GCM.SealedBox(combined: combined), using: SymmetricKey(data: self.keyBytes))
            return String(decoding: opened, as: UTF8.self)
        } catch {
            throw StateStoreError(
                .schema, "a secret in the state file does not open with the key in \(self.keyFile): the state was sealed with another key (was the key file replaced?)")
        }
    }

    private static func loadOrCreate(_ path: String) throws(StateStoreError) -> Data {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var key = [UInt8](repeating: 0, count: 32)
        let created = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if created >= 0 {
            var generator = SystemRandomNumberGenerator()
            for index in key.indices { key[index] = generator.next() }
            let written = key.withUnsafeBytes { Glibc.write(created, $0.baseAddress, $0.count) }
            let synced = written == key.count && fsync(created) == 0
            Glibc.close(created)
            guard synced else {
                unlink(path)
                throw StateStoreError(.schema, "cannot write the state key \(path): \(String(cString: strerror(errno)))")
            }
            return Data(key)
        }
        guard errno == EEXIST else {
            throw StateStoreError(.schema, "cannot create the state key \(path): \(String(cString: strerror(errno)))")
        }
        var status = stat()
        if stat(path, &status) == 0, status.st_uid == getuid(), status.st_mode & 0o077 != 0 { chmod(path, 0o600) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StateStoreError(.schema, "cannot read the state key \(path) (it must be readable by this user only)")
        }
        guard data.count == 32 else {
            throw StateStoreError(.schema, "the state key \(path) is \(data.count) bytes, not 32: it is not a key this conductor made")
        }
        return data
    }
}
