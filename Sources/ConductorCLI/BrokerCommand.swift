import ArgumentParser
import Broker
import Conductor
import Foundation
import Logging

/// `conductor broker`: the embedded AMQP 0-9-1 broker, standalone.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded AMQP 0-9-1 broker.",
        discussion: """
            Prints "conductor broker listening on amqp://HOST:PORT" once it accepts connections \
            (and "... on amqps://HOST:PORT" and "... admin API on http://HOST:PORT" for the TLS and \
            HTTP listeners). Without --definitions or --user, guest/guest is accepted from loopback only.

            Users and permissions changed through the admin API (add-user, delete-user, \
            set-permissions, set-topic-permissions) are saved in the data directory (DIR/users.json). At start the broker \
            takes that file if it exists, then applies --user, --permission and --definitions on top \
            (they win for the names they give, at every start). The built-in guest only seeds a new \
            data directory: once users.json exists, a deleted guest stays deleted. With \
            --no-persistence, admin changes last until the broker stops.

            Beyond loopback (any address but 127.0.0.0/8, ::1 and localhost; 0.0.0.0 included) \
            the plain --listen and the admin API (--http-host) speak in clear text, so they need \
            --insecure; other machines can instead be taken over TLS only: --listen on loopback \
            with --tls-host 0.0.0.0 --tls-port 5671 --tls-cert FILE --tls-key FILE.

            Limits, memory/disk alarms, TLS, the admin API and metrics: see docs/broker.md. \
            Admin commands talk to a broker started with --http-port: conductor broker list-queues, ... \
            (see their --help).
            """,
        subcommands: BrokerAdminCommands.all
    )

    @Option(name: .long, help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String = "127.0.0.1:5672"

    @Option(name: .long, help: "RabbitMQ definitions JSON with users, vhosts, permissions and topic permissions.")
    var definitions: String?

    @Option(name: .long, help: ArgumentHelp(
        "Directory for durable exchanges, queues, bindings and persistent messages.",
        discussion: "Default: $CONDUCTOR_STATE_DIR/broker, else ~/.local/state/conductor/broker. One broker per directory (it is locked)."))
    var dataDir: String?

    @Flag(name: .long, help: "Keep everything in memory: nothing is written, nothing survives a restart.")
    var noPersistence = false

    @Option(name: .long, help: ArgumentHelp(
        "Size at which the data directory's message log starts a new segment file: 16MiB, 64KiB (at least 4KiB).",
        discussion: "Drained segments are deleted and pinned ones compacted (docs/broker.md, \"Persistence\")."))
    var segmentSize: String = "16MiB"

    @Option(name: .long, help: "A user NAME:PASSWORD (repeatable); gets full permissions on every vhost unless --permission is given.")
    var user: [String] = []

    @Option(name: .long, help: "A virtual host (repeatable).")
    var vhost: [String] = []

    @Option(name: .long, help: "USER:VHOST:CONFIGURE:WRITE:READ with regular expressions (repeatable).")
    var permission: [String] = []

    @Option(name: .long, help: "Heartbeat interval proposed to clients, in seconds (0 disables).")
    var heartbeat: UInt16 = 60

    @Option(name: .long, help: "Largest frame size proposed to clients, in bytes.")
    var frameMax: UInt32 = 131_072

    @Option(name: .long, help: ArgumentHelp(
        "Pause publishers to a queue holding this many ready messages (0: no per-queue limit).",
        discussion: "They resume when it is down to half. Connections that consume are never paused."))
    var queueMaxReady: Int = BrokerConfiguration.FlowLimits().queueMaxReady

    @Option(name: .long, help: "Pause all publishers while queued bodies take this many MiB (0: no limit); they resume at three quarters.")
    var maxMemory: Int = BrokerConfiguration.FlowLimits().maxBytes >> 20

    @Option(name: .long, help: ArgumentHelp(
        "Block publishers while the broker's resident memory is above this: a fraction of physical memory (0.4) or a size (512MiB, 2GB).",
        discussion: "Like RabbitMQ's vm_memory_high_watermark; 0 disables."))
    var memoryHighWatermark: String = "0.4"

    @Option(name: .long, help: ArgumentHelp(
        "Block publishers while the disk holding the data directory has less free space than this: a size (50MB) or a fraction of physical memory (1.0).",
        discussion: "Like RabbitMQ's disk_free_limit; 0 disables."))
    var diskFreeLimit: String = "50MB"

    @Option(name: .long, help: "Refuse connections beyond this many open ones with 530 NOT_ALLOWED at connection.open (0: no limit).")
    var maxConnections: Int = 0

    @Option(name: .long, help: "Highest channel number a connection may open (negotiated in connection.tune; beyond it: 530).")
    var channelMax: UInt16 = 2047

    @Option(name: .long, help: "Largest message body in bytes; larger publishes close their channel with 406 PRECONDITION_FAILED (0: no limit).")
    var maxMessageSize: Int = BrokerLimits.defaultMaxMessageSize

    @Option(name: .long, help: "Port of an amqps (TLS) listener (0 picks a free one); needs --tls-cert and --tls-key.")
    var tlsPort: Int?

    @Option(
        name: .long,
        help: "Address of the amqps listener (default: the --listen host). To take other machines over TLS only: --tls-host 0.0.0.0 with --listen on loopback.")
    var tlsHost: String?

    @Option(name: .long, help: "PEM certificate chain of the amqps listener.")
    var tlsCert: String?

    @Option(name: .long, help: "PEM private key of the amqps listener.")
    var tlsKey: String?

    @Option(name: .long, help: "PEM CA certificates that client certificates must chain to.")
    var tlsCa: String?

    @Flag(name: .long, help: "Require a client certificate signed by --tls-ca on the amqps listener (such a client may log in with SASL EXTERNAL as the user named by its certificate's CN).")
    var tlsVerifyPeer = false

    @Option(name: .long, help: ArgumentHelp(
        "Port of the admin HTTP API and Prometheus /metrics (0 picks a free one; off unless given).",
        discussion: "The API takes HTTP basic auth as an administrator (see --http-admin); /metrics needs none."))
    var httpPort: Int?

    @Option(name: .long, help: "Address of the admin HTTP listener (plain HTTP: beyond loopback only with --insecure).")
    var httpHost: String = "127.0.0.1"

    @Flag(
        name: .long,
        help: "Accept listening beyond loopback in clear text: the plain --listen (passwords and messages) and the admin API's --http-host (administrators' passwords). The amqps listener needs no such flag.")
    var insecure = false

    @Option(name: .customLong("http-admin"), help: "A user allowed to use the admin API (repeatable; default: every user the broker starts with).")
    var adminUser: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Self.parseListen(self.listen) != nil else {
            throw ValidationError("--listen must be HOST:PORT, got '\(self.listen)'")
        }
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(self.logLevel)'")
        }
        for entry in self.user where !entry.contains(":") {
            throw ValidationError("--user must be NAME:PASSWORD, got '\(entry)'")
        }
        for entry in self.permission where entry.split(separator: ":", omittingEmptySubsequences: false).count != 5 {
            throw ValidationError("--permission must be USER:VHOST:CONFIGURE:WRITE:READ, got '\(entry)'")
        }
        if self.noPersistence, self.dataDir != nil {
            throw ValidationError("--data-dir and --no-persistence exclude each other")
        }
        guard case .absolute(let segmentBytes)? = ResourceAmount(parsing: self.segmentSize), segmentBytes >= 4096 else {
            throw ValidationError("--segment-size must be a size of at least 4KiB (16MiB, 64KiB), got '\(self.segmentSize)'")
        }
        guard self.queueMaxReady >= 0, self.maxMemory >= 0 else {
            throw ValidationError("--queue-max-ready and --max-memory must be 0 or more")
        }
        if self.frameMax != 0, self.frameMax < 4096 {
            throw ValidationError("--frame-max must be 0 or at least 4096")
        }
        guard ResourceAmount(parsing: self.memoryHighWatermark) != nil else {
            throw ValidationError("--memory-high-watermark must be a fraction (0.4) or a size (512MiB), got '\(self.memoryHighWatermark)'")
        }
        guard ResourceAmount(parsing: self.diskFreeLimit) != nil else {
            throw ValidationError("--disk-free-limit must be a size (50MB) or a fraction (1.0), got '\(self.diskFreeLimit)'")
        }
        guard self.maxConnections >= 0, self.maxMessageSize >= 0 else {
            throw ValidationError("--max-connections and --max-message-size must be 0 or more")
        }
        for (name, port) in [("--tls-port", self.tlsPort), ("--http-port", self.httpPort)] {
            if let port, !(0...65535).contains(port) { throw ValidationError("\(name) must be 0...65535, got \(port)") }
        }
        if self.tlsPort != nil, self.tlsCert == nil || self.tlsKey == nil {
            throw ValidationError("--tls-port needs --tls-cert and --tls-key")
        }
        if self.tlsPort == nil, self.tlsCert != nil || self.tlsKey != nil || self.tlsCa != nil || self.tlsVerifyPeer || self.tlsHost != nil {
            throw ValidationError("--tls-cert, --tls-key, --tls-ca, --tls-verify-peer and --tls-host need --tls-port")
        }
        if self.tlsVerifyPeer, self.tlsCa == nil {
            throw ValidationError("--tls-verify-peer needs --tls-ca")
        }
        if let refusal = self.clearTextRefusal { throw ValidationError(refusal) }
    }

    /// A listener beyond loopback that speaks in clear text, without --insecure: the
    /// plain AMQP one (an amqps listener beside it does not make it safe), or the admin
    /// API, which has no TLS.
    var clearTextRefusal: String? {
        guard !self.insecure, let listen = Self.parseListen(self.listen) else { return nil }
        if !ListenAddress.isLoopback(listen.host) {
            return ListenAddress.clearTextRefusal(
                "--listen \(self.listen)", carries: "passwords and messages",
                remedy: "listen on loopback and take other machines over TLS (--tls-host \(listen.host) --tls-port 5671 with --tls-cert and --tls-key)")
        }
        if self.httpPort != nil, !ListenAddress.isLoopback(self.httpHost) {
            return ListenAddress.clearTextRefusal(
                "--http-host \(self.httpHost)", carries: "administrators' passwords and the admin API", remedy: "keep it on loopback (it has no TLS)")
        }
        return nil
    }

    /// --data-dir, else $CONDUCTOR_STATE_DIR/broker, else ~/.local/state/conductor/broker.
    var dataDirectory: String {
        if let dataDir { return dataDir.hasPrefix("/") ? dataDir : FileManager.default.currentDirectoryPath + "/" + dataDir }
        let environment = ProcessInfo.processInfo.environment
        if let state = environment["CONDUCTOR_STATE_DIR"], !state.isEmpty { return state + "/broker" }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state/conductor/broker"
    }

    static func parseListen(_ value: String) -> (host: String, port: Int)? {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(value[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    func makeConfiguration() throws -> BrokerConfiguration {
        var configuration = BrokerConfiguration()
        if let definitions = self.definitions {
            configuration = try BrokerConfiguration.load(definitionsFile: definitions)
        }
        let (host, port) = Self.parseListen(self.listen)!
        configuration.host = host
        configuration.port = port
        configuration.heartbeat = self.heartbeat
        configuration.frameMax = self.frameMax
        configuration.dataDirectory = self.noPersistence ? nil : self.dataDirectory
        if case .absolute(let segmentBytes)? = ResourceAmount(parsing: self.segmentSize) { configuration.storeSegmentBytes = segmentBytes }
        configuration.flowLimits = BrokerConfiguration.FlowLimits(
            queueMaxReady: self.queueMaxReady,
            queueResumeReady: self.queueMaxReady / 2,
            maxBytes: self.maxMemory << 20,
            resumeBytes: (self.maxMemory << 20) / 4 * 3
        )
        configuration.channelMax = self.channelMax
        configuration.limits = BrokerLimits(maxConnections: self.maxConnections, maxMessageSize: self.maxMessageSize)
        configuration.watermarks.memoryHighWatermark = ResourceAmount(parsing: self.memoryHighWatermark)!
        configuration.watermarks.diskFreeLimit = ResourceAmount(parsing: self.diskFreeLimit)!
        if let tlsPort = self.tlsPort, let cert = self.tlsCert, let key = self.tlsKey {
            configuration.tls = BrokerTLSConfiguration(
                host: self.tlsHost, port: tlsPort, certificateChainFile: cert, privateKeyFile: key, caFile: self.tlsCa, verifyPeer: self.tlsVerifyPeer)
        }
        if let httpPort = self.httpPort {
            configuration.admin = AdminConfiguration(host: self.httpHost, port: httpPort, administrators: self.adminUser)
        }
        for name in self.vhost where !configuration.vhosts.contains(name) {
            configuration.vhosts.append(name)
        }
        if !self.user.isEmpty {
            if self.definitions == nil {
                // Explicit users replace the default guest.
                configuration.users = []
                configuration.permissions = []
            }
            for entry in self.user {
                let colon = entry.firstIndex(of: ":")!
                let name = String(entry[..<colon])
                configuration.users.removeAll { $0.name == name }
                configuration.users.append(BrokerUser(name: name, password: String(entry[entry.index(after: colon)...])))
                if self.permission.isEmpty {
                    for vhost in configuration.vhosts {
                        configuration.permissions.append(BrokerPermission(user: name, vhost: vhost))
                    }
                }
            }
        }
        for entry in self.permission {
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            configuration.permissions.removeAll { $0.user == parts[0] && $0.vhost == parts[1] }
            configuration.permissions.append(BrokerPermission(user: parts[0], vhost: parts[1], configure: parts[2], write: parts[3], read: parts[4]))
        }
        return configuration
    }

    func run() async throws {
        let configuration: BrokerConfiguration
        do {
            configuration = try self.makeConfiguration()
        } catch {
            throw ValidationError("\(error)")
        }
        var logger = Logger(label: "conductor.broker")
        logger.logLevel = Logger.Level(rawValue: self.logLevel) ?? .info
        let server = BrokerServer(configuration: configuration, logger: logger)
        let port: Int
        do {
            port = try await server.start()
        } catch {
            FileHandle.standardError.write(Data("conductor broker: \(error)\n".utf8))
            throw ExitCode(1)
        }
        // Unbuffered, so a script reading a pipe sees it at once.
        FileHandle.standardOutput.write(Data("conductor broker listening on amqp://\(configuration.host):\(port)\n".utf8))
        if let tlsPort = server.tlsPort {
            FileHandle.standardOutput.write(Data("conductor broker listening on amqps://\(configuration.tls?.host ?? configuration.host):\(tlsPort)\n".utf8))
        }
        if let adminPort = server.adminPort, let admin = configuration.admin {
            FileHandle.standardOutput.write(Data("conductor broker admin API on http://\(admin.host):\(adminPort)\n".utf8))
        }
        try await server.runUntilTerminated(logger: logger)
    }
}
