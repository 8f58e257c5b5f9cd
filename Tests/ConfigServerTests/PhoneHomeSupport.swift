import AMQPClient
import Broker
import ConfigServer
import Conductor
import Foundation
import Mesh
import TestSupport
import Testing

/// A coordinator in this test process: an embedded broker (the roll-out's console needs
/// one, though phone-home members use none), a state store, a `PhoneHomeDesk`, the HTTP
/// API on a free loopback port, and a launcher whose providers are `local` (on `prefix`)
/// and the deployable's phone-home providers.
struct PhoneHomeHarness {
    let broker: TestBroker
    let store: SQLiteStateStore
    let stateDirectory: String
    let desk: PhoneHomeDesk
    let server: ConfigServer
    let prefix: (UInt8, UInt8, UInt8)

    static func with(
        prefix: (UInt8, UInt8, UInt8) = (127, 63, 1), agentBinary: String? = nil, tls: (certificate: String, key: String)? = nil,
        _ body: (PhoneHomeHarness) async throws -> Void
    ) async throws {
        let users = [BrokerUser(name: "conductor", password: "c-secret"), BrokerUser(name: "agent", password: "a-secret")]
        let broker = try await TestBroker.start(users: users)
        let directory = try temporaryDirectory()
        let store = try SQLiteStateStore(path: directory + "/state.sqlite")
        let desk = PhoneHomeDesk(store: store)
        var settings = ConfigServer.Settings(host: "127.0.0.1", port: 0, tlsCertificate: tls?.certificate, tlsKey: tls?.key)
        if let agentBinary { settings.agentBinary = agentBinary }
        let server: ConfigServer
        do {
            server = try await ConfigServer.start(settings, desk: desk)
        } catch {
            try? await broker.stop()
            throw error
        }
        desk.baseURL = server.url
        let harness = PhoneHomeHarness(broker: broker, store: store, stateDirectory: directory, desk: desk, server: server, prefix: prefix)
        do {
            try await body(harness)
        } catch {
            await server.stop()
            try? await broker.stop()
            throw error
        }
        await server.stop()
        try? await broker.stop()
    }

    func launcher(for file: String, waitBudget: Duration = .seconds(20), jobTimeout: Duration = .seconds(20)) throws -> Launcher {
        let options = LaunchOptions(
            stateDirectory: self.stateDirectory, console: try AMQPConnectionConfiguration(url: self.broker.url(user: "conductor", password: "c-secret")),
            agentBrokerURL: self.broker.url(user: "agent", password: "a-secret"), waitBudget: waitBudget, jobTimeout: jobTimeout, actor: .system)
        let request = LaunchRequest(file: file)
        let providers: [any InstanceProvider] = [LocalProvider(executable: ConductorBinary.path, addressPrefix: self.prefix)]
            + LaunchCoordinator.definedProviders(request, phoneHome: self.desk)
        return Launcher(store: self.store, providers: providers, options: options)
    }

    /// The file the launch wrote for `member` (waits until it is there).
    func envFile(deployment: String, member: String) async throws -> PhoneHomeEnv {
        let path = "\(self.stateDirectory)/deployments/\(deployment)@default/\(member)/phone-home.env"
        return try await PhoneHomeEnv.read(path)
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "conductor-phonehome-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes a deployable into a fresh directory; returns its path.
    static func deployable(_ text: String, name: String = "deployable.yml") throws -> String {
        let path = try temporaryDirectory() + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// `phone-home.env`, read the way the instance's shell reads it.
struct PhoneHomeEnv: Sendable {
    var path: String
    var values: [String: String]

    var url: String { self.values["CONDUCTOR_CONFIG_URL"] ?? "" }
    var instanceID: String { self.values["CONDUCTOR_INSTANCE_ID"] ?? "" }
    var token: String { self.values["CONDUCTOR_TOKEN"] ?? "" }
    var configURL: String { "\(self.url)/configs/v1/\(self.instanceID)" }
    var paramsURL: String { "\(self.url)/params/v1/\(self.instanceID)" }
    var bearer: String { "Authorization: Bearer \(self.token)" }

    static func read(_ path: String, within seconds: Double = 15) async throws -> PhoneHomeEnv {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("CONDUCTOR_TOKEN=") {
                var values: [String: String] = [:]
                for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                    guard let equals = line.firstIndex(of: "=") else { continue }
                    var value = String(line[line.index(after: equals)...])
                    if value.hasPrefix("'"), value.hasSuffix("'"), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                    values[String(line[..<equals])] = value
                }
                return PhoneHomeEnv(path: path, values: values)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimeoutError(what: "\(path) to be written")
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

/// An HTTP exchange made with curl (the client an appliance has), run off the cooperative pool.
struct HTTPExchange: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: self.body, as: UTF8.self) }
    var json: MeshValue? { try? MeshValue(json: self.body) }

    /// `curl -sS ARGUMENTS URL`; `body` is sent from a file (any size).
    static func curl(_ url: String, _ arguments: [String] = [], body: Data? = nil) async throws -> HTTPExchange {
        try await offloaded {
            let base = NSTemporaryDirectory() + "conductor-curl-\(UUID().uuidString.prefix(8))"
            defer { for suffix in [".body", ".headers", ".upload"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
            var extra = arguments
            if let body {
                try body.write(to: URL(fileURLWithPath: base + ".upload"))
                extra += ["--data-binary", "@" + base + ".upload"]
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-sS", "--max-time", "20", "-o", base + ".body", "-D", base + ".headers", "-w", "%{http_code}"] + extra + [url]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let written = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            var headers: [String: String] = [:]
            let headerText = (try? String(contentsOfFile: base + ".headers", encoding: .utf8)) ?? ""
            for line in headerText.split(whereSeparator: \.isNewline) {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return HTTPExchange(
                status: Int(String(decoding: written, as: UTF8.self)) ?? 0, headers: headers,
                body: FileManager.default.contents(atPath: base + ".body") ?? Data())
        }
    }

    /// GETs until `until` holds (at most `seconds`), returning the last exchange.
    static func poll(_ url: String, _ arguments: [String] = [], seconds: Double = 15, until: (HTTPExchange) -> Bool) async throws -> HTTPExchange {
        let deadline = Date().addingTimeInterval(seconds)
        var last = try await curl(url, arguments)
        while !until(last), Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            last = try await curl(url, arguments)
        }
        return last
    }
}

/// Runs blocking work on a Dispatch thread and awaits it.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// SHA-256 (hex) of a file, with sha256sum.
func sha256(ofFile path: String) async throws -> String {
    try await offloaded {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return String(text.prefix(64))
    }
}
