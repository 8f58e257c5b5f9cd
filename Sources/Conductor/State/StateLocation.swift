import Foundation

/// Which store holds the coordinator's state, from `--state`: a path (a state directory, or a
/// `.sqlite` file) is SQLite, a `postgresql://` or `postgres://` URL is PostgreSQL. The
/// state directory keeps the coordinator's files either way (coordinator.json, keys, bus
/// records) and, by default, the key that seals secrets (`state.key`).
public enum StateLocation: Sendable, Hashable, CustomStringConvertible {
    /// The SQLite database file.
    case sqlite(path: String)
    case postgres(PostgresStateURL)

    /// `value`: what `--state` was given (nil: `state.sqlite` in `stateDirectory`).
    public init(_ value: String?, stateDirectory: String) throws(StateStoreError) {
        guard let value, !value.isEmpty else {
            self = .sqlite(path: stateDirectory + "/state.sqlite")
            return
        }
        if PostgresStateURL.isPostgres(value) {
            var url = try PostgresStateURL(parsing: value)
            // As psql does: a password kept out of the URL (and so out of `ps`).
            if url.password == nil, let password = ProcessInfo.processInfo.environment["PGPASSWORD"], !password.isEmpty { url.password = password }
            self = .postgres(url)
        } else if value.contains("://") {
            throw StateStoreError(.schema, "--state takes a directory, a .sqlite file or a postgresql:// URL, not '\(PostgresStateURL.redacting(value))'")
        } else {
            let path = value.hasPrefix("/") ? value : FileManager.default.currentDirectoryPath + "/" + value
            self = .sqlite(path: path.hasSuffix(".sqlite") ? path : path + "/state.sqlite")
        }
    }

    /// For messages: the file, or the URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let url): url.description
        }
    }

    public var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// Whether a state exists there without creating one (`status` on a machine that never
    /// launched says so instead of making an empty file); a database is assumed to.
    public var exists: Bool {
        switch self {
        case .sqlite(let path): FileManager.default.fileExists(atPath: path)
        case .postgres: true
        }
    }

    /// Opens the store. `keyFile`: the sealing key (`--state-key`); nil: `CONDUCTOR_STATE_KEY`,
    /// else `state.key` beside the SQLite file, or in `stateDirectory` for PostgreSQL.
    /// `fence`: checked in every write to PostgreSQL (a standby coordinator's `LeaderFence`).
    public func open(
        stateDirectory: String, keyFile: String? = nil, options: StateStoreOptions = StateStoreOptions(), fence: (any PostgresWriteFence)? = nil
    ) async throws -> any CoordinatorStateStore {
        var options = options
        if let keyFile { options.keyFile = keyFile }
        switch self {
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            return try SQLiteStateStore(path: path, options: options)
        case .postgres(let url):
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
            return try await PostgresStateStore.open(url, keyFile: options.keyFile ?? stateDirectory + "/state.key", options: options, fence: fence)
        }
    }
}
