import Foundation
import Glibc
import NIOCore

/// The broker's users, administrators and permissions as the admin API changes them, kept
/// in `DIR/users.json` when the broker has a data directory (docs/broker.md, "Admin API").
///
/// The rule, like RabbitMQ's (a database that `rabbitmqctl` changes, definitions imported
/// at every boot, the default user created on a blank node only): the file holds the whole
/// set as it was after the last change; at start the broker takes it (or, without it, the
/// built-in guest), then adds the users and permissions the configuration names, which win
/// over stored entries of the same name. The file is a RabbitMQ definitions document (the
/// `users`, `permissions` and `topic_permissions` parts), so `--definitions DIR/users.json`
/// reads it too.
/// Loop-bound: read and changed only on the broker's event loop.
final class UserStore {
    /// `DIR/users.json`; nil without a data directory (changes then live in memory only).
    let path: String?
    /// Who may use the admin API.
    var administrators: Set<String>

    init(configuration: BrokerConfiguration) {
        self.path = configuration.dataDirectory.map { $0 + "/users.json" }
        self.administrators = Self.configuredAdministrators(configuration)
    }

    var persists: Bool { self.path != nil }

    /// `--http-admin` names, or when none are given every user the configuration names.
    static func configuredAdministrators(_ configuration: BrokerConfiguration) -> Set<String> {
        let named = configuration.admin?.administrators ?? []
        return Set(named.isEmpty ? configuration.users.map(\.name) : named)
    }

    // MARK: - The file

    /// A RabbitMQ definitions document restricted to users, permissions and topic permissions.
    struct Document: Codable, Equatable {
        struct User: Codable, Equatable {
            var name: String
            var passwordHash: String
            var hashingAlgorithm: String
            var tags: [String]
            /// Ours (RabbitMQ ignores it): the user may only connect from loopback.
            var loopbackOnly: Bool?
        }

        struct Permission: Codable, Equatable {
            var user: String
            var vhost: String
            var configure: String
            var write: String
            var read: String
        }

        struct TopicPermission: Codable, Equatable {
            var user: String
            var vhost: String
            var exchange: String
            var write: String
            var read: String
        }

        var users: [User]
        var permissions: [Permission]
        /// Absent in files written before topic permissions existed.
        var topicPermissions: [TopicPermission]?
    }

    static let hashingAlgorithm = "rabbit_password_hashing_sha256"

    /// The stored document, or nil when there is none yet.
    static func read(_ path: String) throws(BrokerConfigurationError) -> Document? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw BrokerConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        let document: Document
        do {
            document = try AdminAPI.decoder.decode(Document.self, from: data)
        } catch {
            throw BrokerConfigurationError("\(path) is not a users file the broker wrote (\(error)); move it away to start from the configuration")
        }
        for user in document.users where user.hashingAlgorithm != Self.hashingAlgorithm {
            throw BrokerConfigurationError("\(path): user \(user.name) uses \(user.hashingAlgorithm); only \(Self.hashingAlgorithm) is supported")
        }
        return document
    }

    /// Replaces the file atomically: a temporary file (mode 0600) written and fsynced, renamed
    /// over the old one, then the directory fsynced so the rename itself survives a crash.
    static func write(_ bytes: [UInt8], to path: String) throws(BrokerConfigurationError) {
        let temporary = path + ".tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BrokerConfigurationError("cannot create \(temporary): \(Self.errnoText())") }
        // An older temporary file may have had another mode.
        var written = fchmod(fd, 0o600) == 0 ? 0 : -1
        while written >= 0, written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            written = count < 0 ? -1 : written + count
        }
        let synced = written == bytes.count && fsync(fd) == 0
        let failure = Self.errnoText()
        Glibc.close(fd)
        guard synced else {
            unlink(temporary)
            throw BrokerConfigurationError("cannot write \(temporary): \(failure)")
        }
        guard rename(temporary, path) == 0 else {
            let failure = Self.errnoText()
            unlink(temporary)
            throw BrokerConfigurationError("cannot rename \(temporary) to \(path): \(failure)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let directoryFD = Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw BrokerConfigurationError("cannot open \(directory) to fsync it: \(Self.errnoText())") }
        defer { Glibc.close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw BrokerConfigurationError("fsync of \(directory) failed: \(Self.errnoText())") }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Writes happen off the loop, one after the other, in the order the changes were made.
    private static let writer = DispatchQueue(label: "conductor.broker.users")

    /// Saves `document`; the future completes on `eventLoop` once it is on disk (at once
    /// when there is no data directory).
    func save(_ document: Document, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let path = self.path else { return eventLoop.makeSucceededVoidFuture() }
        let bytes = AdminAPI.encode(document)
        let promise = eventLoop.makePromise(of: Void.self)
        Self.writer.async {
            do {
                try Self.write(bytes, to: path)
                promise.succeed()
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}

extension BrokerCore {
    /// The current users, administrator tags and permissions, as `users.json` holds them.
    func userDocument() -> UserStore.Document {
        let users = self.authenticator.users.values.sorted { $0.name < $1.name }.map { user in
            UserStore.Document.User(
                name: user.name, passwordHash: user.passwordHash, hashingAlgorithm: UserStore.hashingAlgorithm,
                tags: self.userStore.administrators.contains(user.name) ? ["administrator"] : [],
                loopbackOnly: user.loopbackOnly ? true : nil
            )
        }
        let permissions = self.allPermissions.map {
            UserStore.Document.Permission(user: $0.user, vhost: $0.vhost, configure: $0.configure, write: $0.write, read: $0.read)
        }
        let topicPermissions = self.allTopicPermissions.map {
            UserStore.Document.TopicPermission(user: $0.user, vhost: $0.vhost, exchange: $0.exchange, write: $0.write, read: $0.read)
        }
        return UserStore.Document(users: users, permissions: permissions, topicPermissions: topicPermissions)
    }

    /// At start, before anything listens: takes `users.json` if the data directory has one,
    /// then the configuration's own users and permissions on top (see `UserStore`).
    func loadStoredUsers() throws(BrokerConfigurationError) {
        guard let path = self.userStore.path, let document = try UserStore.read(path) else { return }
        var users: [String: BrokerUser] = [:]
        var permissions: [String: [String: BrokerPermission]] = [:]
        var topicPermissions: [String: [String: [String: BrokerTopicPermission]]] = [:]
        var administrators: Set<String> = []
        for user in document.users {
            users[user.name] = BrokerUser(name: user.name, passwordHash: user.passwordHash, loopbackOnly: user.loopbackOnly ?? false)
            if user.tags.contains("administrator") { administrators.insert(user.name) }
        }
        for entry in document.permissions {
            permissions[entry.user, default: [:]][entry.vhost] = BrokerPermission(
                user: entry.user, vhost: entry.vhost, configure: entry.configure, write: entry.write, read: entry.read)
        }
        for entry in document.topicPermissions ?? [] {
            topicPermissions[entry.user, default: [:]][entry.vhost, default: [:]][entry.exchange] = BrokerTopicPermission(
                user: entry.user, vhost: entry.vhost, exchange: entry.exchange, write: entry.write, read: entry.read)
        }
        let configuration = self.configuration
        // The built-in guest only seeds a new data directory: one deleted stays deleted.
        if !configuration.accessIsBuiltInDefault {
            for user in configuration.users { users[user.name] = user }
            for permission in configuration.permissions { permissions[permission.user, default: [:]][permission.vhost] = permission }
            for topic in configuration.topicPermissions {
                topicPermissions[topic.user, default: [:]][topic.vhost, default: [:]][topic.exchange] = topic
            }
            administrators.formUnion(UserStore.configuredAdministrators(configuration))
        } else {
            administrators.formUnion(configuration.admin?.administrators ?? [])
        }
        self.authenticator.users = users
        self.authenticator.access = permissions.mapValues { Set($0.keys) }
        self.permissions = permissions
        self.topicPermissions = topicPermissions
        self.userStore.administrators = administrators
        self.logger.info("users and permissions from the data directory", metadata: [
            "broker_users_file": "\(path)", "broker_users": "\(users.count)",
        ])
    }
}
