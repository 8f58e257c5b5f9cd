import Foundation

/// The small JSON records a state directory keeps beside `state.sqlite`: the live
/// coordinator, the embedded buses, which coordinator launched what. Each is written
/// atomically, mode 0600 in a 0700 directory: they hold passwords or say who owns what.
public enum StateRecords {
    /// A record `write` wrote; nil when missing or unreadable.
    public static func read<Value: Decodable>(_ type: Value.Type, from path: String) -> Value? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(type, from: $0) }
    }

    /// Writes `value` as JSON to `path` atomically (a temporary file, then rename).
    public static func write<Value: Encodable>(_ value: Value, to path: String) throws(HostError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = path + ".tmp"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard FileManager.default.createFile(atPath: temporary, contents: try JSONEncoder().encode(value), attributes: [.posixPermissions: 0o600]) else {
                throw HostError("cannot write \(temporary)")
            }
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError("cannot write \(temporary): \(error.localizedDescription)")
        }
        guard rename(temporary, path) == 0 else { throw HostError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// Copies the file at `source` to `path` atomically with mode 0600 (false when it cannot).
    @discardableResult
    public static func copy(_ source: String, to path: String) -> Bool {
        guard let saved = FileManager.default.contents(atPath: source) else { return false }
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.createFile(atPath: path + ".tmp", contents: saved, attributes: [.posixPermissions: 0o600]) else { return false }
        return rename(path + ".tmp", path) == 0
    }
}

/// What went wrong hosting a coordinator or its bus, said for a user.
public struct HostError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
