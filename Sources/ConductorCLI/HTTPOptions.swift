import ArgumentParser
import ConfigServer
import Conductor
import Foundation

/// `--http HOST:PORT` (and its TLS files) for serve, a foreground launch and fwd: the
/// coordinator's HTTP API for instances that phone home (`kind: phone-home` providers) and
/// for the agent download. docs/launch.md, "Phone home".
struct HTTPOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Serve the HTTP API for instances that phone home (providers of kind phone-home) and the agent download on HOST:PORT, e.g. 127.0.0.1:0 (a free port) or 0.0.0.0:8080 (beyond loopback: with --http-tls-cert, or --insecure). Default: off.")
    var http: String?

    @Option(name: .long, help: "PEM certificate chain for --http: serve HTTPS.")
    var httpTlsCert: String?

    @Option(name: .long, help: "PEM private key of --http-tls-cert.")
    var httpTlsKey: String?

    func validate() throws {
        if let http = self.http, ConfigServer.Settings.address(http) == nil {
            throw ValidationError("--http takes HOST:PORT, like 127.0.0.1:0 or 0.0.0.0:8080 (the host must be given), got '\(http)'")
        }
        if (self.httpTlsCert == nil) != (self.httpTlsKey == nil) { throw ValidationError("--http-tls-cert and --http-tls-key go together") }
        if self.httpTlsCert != nil, self.http == nil { throw ValidationError("--http-tls-cert and --http-tls-key need --http") }
    }

    var enabled: Bool { self.http != nil }

    /// What --http beyond loopback without --http-tls-cert is refused with (unless
    /// --insecure); nil when it is on loopback or speaks HTTPS.
    var clearTextRefusal: String? {
        guard let http = self.http, let address = ConfigServer.Settings.address(http), !ListenAddress.isLoopback(address.host),
            self.httpTlsCert == nil
        else { return nil }
        return ListenAddress.clearTextRefusal(
            "--http \(http)", carries: "instances' tokens and configurations (their secrets included)", remedy: "give --http-tls-cert and --http-tls-key")
    }

    /// The same options for a `conductor serve` started in the background.
    var arguments: [String] {
        guard let http = self.http else { return [] }
        var arguments = ["--http", http]
        if let certificate = self.httpTlsCert, let key = self.httpTlsKey {
            arguments += ["--http-tls-cert", absolutePath(certificate), "--http-tls-key", absolutePath(key)]
        }
        return arguments
    }

    /// Starts the API when --http was given, answering from `desk`, and points the desk at
    /// it; nil without --http. A server that cannot listen is an error naming the address.
    func start(desk: PhoneHomeDesk?, enrollment: AgentEnrollment? = nil) async throws -> ConfigServer? {
        guard let http = self.http, let address = ConfigServer.Settings.address(http), let desk else { return nil }
        let settings = ConfigServer.Settings(
            host: address.host, port: address.port, tlsCertificate: self.httpTlsCert.map(absolutePath), tlsKey: self.httpTlsKey.map(absolutePath))
        let server = try await ConfigServer.start(settings, desk: desk, enrollment: enrollment)
        desk.baseURL = server.url
        return server
    }

    /// The line that says where it listens, like the broker's.
    static func announcement(_ server: ConfigServer) -> String {
        "HTTP API on \(server.isTLS ? "https" : "http")://\(server.host.contains(":") ? "[\(server.host)]" : server.host):\(server.port) (phone-home configurations and facts, agent download; instances are told \(server.url))"
    }
}
