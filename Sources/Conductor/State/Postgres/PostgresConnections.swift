import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Where a PostgreSQL state lives: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
/// (`postgres://` too). The password is never shown: `description` leaves it out.
public struct PostgresStateURL: Sendable, Hashable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String

    public init(user: String, password: String?, host: String, port: Int = 5432, database: String) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
    }

    /// Whether `text` names a PostgreSQL state rather than a path.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    public init(parsing text: String) throws(StateStoreError) {
        let usage = "write postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw StateStoreError(.schema, "'\(Self.redacting(text))' is not a PostgreSQL URL; \(usage)")
        }
        guard let host = components.host, !host.isEmpty else { throw StateStoreError(.schema, "\(Self.redacting(text)) names no host; \(usage)") }
        guard let user = components.user, !user.isEmpty else { throw StateStoreError(.schema, "\(Self.redacting(text)) names no user; \(usage)") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw StateStoreError(.schema, "\(Self.redacting(text)) names no database; \(usage)")
        }
        self.init(
            user: user.removingPercentEncoding ?? user, password: components.password.map { $0.removingPercentEncoding ?? $0 }, host: host,
            port: components.port ?? 5432, database: database.removingPercentEncoding ?? database)
    }

    /// The URL without its password, for messages.
    public var description: String { "postgresql://\(self.user)@\(self.host):\(self.port)/\(self.database)" }

    /// The same URL with `password` in place of its password (for sub-processes' arguments).
    public var withPassword: String {
        let escape = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? text }
        let secret = self.password.map { ":" + escape($0) } ?? ""
        return "postgresql://\(escape(self.user))\(secret)@\(self.host):\(self.port)/\(self.database)"
    }

    static func redacting(_ text: String) -> String {
        guard let components = URLComponents(string: text), components.password != nil else { return text }
        var copy = components
        copy.password = "****"
        return copy.string ?? "postgresql://…"
    }
}

/// A few connections to one database, opened on demand, each lent to one caller at a time (a
/// transaction needs its connection to itself). A connection that broke is dropped and the
/// next caller opens a fresh one, so a restarted server costs one failed call, not the store.
final class PostgresConnections: Sendable {
    let url: PostgresStateURL
    private let configuration: PostgresConnection.Configuration
    private let limit: Int
    private let connectTimeout: Duration
    private let logger: Logger
    private let nextID = Atomic<Int>(0)

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private let state = Mutex(State())

    init(url: PostgresStateURL, limit: Int = 4, connectTimeout: Duration = .seconds(10), logger: Logger) {
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable)
        configuration.options.connectTimeout = .milliseconds(connectTimeout.wholeMilliseconds)
        // No statement waits forever: a lock held by a stuck coordinator fails the call instead.
        configuration.options.additionalStartupParameters = [
            ("application_name", "conductor"), ("statement_timeout", "30s"), ("lock_timeout", "15s"),
        ]
        self.url = url
        self.configuration = configuration
        self.limit = limit
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    /// A store dropped without `close()` (a command that read and exited) closes its idle
    /// connections anyway; each is kept alive until its channel has closed.
    deinit {
        for connection in self.state.withLock({ $0.idle }) {
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    /// Lends a connection to `body`; it goes back to the idle ones afterwards, unless it broke.
    func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await self.lease()
        do {
            let result = try await body(connection)
            self.giveBack(connection)
            return result
        } catch {
            self.giveBack(connection)
            throw error
        }
    }

    private func lease() async throws -> PostgresConnection {
        while true {
            enum Next {
                case use(PostgresConnection)
                case open
                case wait
                case closed
            }
            let next: Next = self.state.withLock { state in
                if state.closed { return .closed }
                while let connection = state.idle.popLast() {
                    if !connection.isClosed { return .use(connection) }
                    state.open -= 1
                }
                if state.open < self.limit {
                    state.open += 1
                    return .open
                }
                return .wait
            }
            switch next {
            case .use(let connection): return connection
            case .closed: throw StateStoreError(.schema, "the PostgreSQL state \(self.url) is closed")
            case .open:
                do {
                    return try await self.connect()
                } catch {
                    self.dropped()
                    throw error
                }
            case .wait:
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state in
                        if state.open < self.limit || !state.idle.isEmpty || state.closed { return true }
                        state.waiting.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    private func giveBack(_ connection: PostgresConnection) {
        let (next, closing): (CheckedContinuation<Void, Never>?, Bool) = self.state.withLock { state in
            if connection.isClosed || state.closed {
                state.open -= 1
            } else {
                state.idle.append(connection)
            }
            return (state.waiting.isEmpty ? nil : state.waiting.removeFirst(), state.closed)
        }
        if closing { connection.close().whenComplete { _ in } }
        next?.resume()
    }

    private func dropped() {
        let next = self.state.withLock { state in
            state.open -= 1
            return state.waiting.isEmpty ? nil : state.waiting.removeFirst()
        }
        next?.resume()
    }

    /// One connection, or a one-line error naming the server and the cause within the timeout
    /// (a server that accepts and then says nothing does not hang the caller).
    private func connect() async throws -> PostgresConnection {
        let id = self.nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let configuration = self.configuration
        let logger = self.logger
        let url = self.url
        let timeout = self.connectTimeout
        return try await withThrowingTaskGroup(of: PostgresConnection?.self) { group in
            group.addTask {
                do {
                    return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
                } catch {
                    throw Self.explain(error, url: url)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let connection = first else {
                throw StateStoreError(.schema, "cannot reach the PostgreSQL state at \(url.host):\(url.port): no answer within \(timeout)")
            }
            return connection
        }
    }

    /// Closes every idle connection; those lent out close when they come back.
    func close() async {
        let idle = self.state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for connection in idle { try? await connection.close() }
        let waiting = self.state.withLock { state in
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// The cause of a failed connection in one line: the server's own message (wrong
    /// password, unknown database) or the network's (refused, unknown host).
    static func explain(_ error: any Error, url: PostgresStateURL) -> StateStoreError {
        let place = "\(url.host):\(url.port)"
        guard let psql = error as? PSQLError else {
            return StateStoreError(.schema, "cannot reach the PostgreSQL state at \(place): \(error)")
        }
        if let message = psql.serverInfo?[.message] {
            return StateStoreError(.schema, "the PostgreSQL server at \(place) refused \(url.user) on database \(url.database): \(message)")
        }
        let cause: String
        switch psql.code {
        case .connectionError: cause = psql.underlying.map(Self.networkCause) ?? "connection failed"
        case .authMechanismRequiresPassword: cause = "the server wants a password and the URL gives none"
        case .unsupportedAuthMechanism: cause = "the server asks for an authentication this client does not support"
        case .serverClosedConnection: cause = "the server closed the connection"
        default: cause = "\(psql.code)"
        }
        return StateStoreError(.schema, "cannot reach the PostgreSQL state at \(place): \(cause)")
    }

    private static func networkCause(_ error: any Error) -> String {
        if let failure = error as? NIOConnectionError, let first = failure.connectionErrors.first {
            return Self.networkCause(first.error)
        }
        if let failure = error as? NIOConnectionError, let dns = failure.dnsAAAAError ?? failure.dnsAError {
            return "cannot resolve the host (\(dns))"
        }
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        return "\(error)"
    }
}

extension Duration {
    fileprivate var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
