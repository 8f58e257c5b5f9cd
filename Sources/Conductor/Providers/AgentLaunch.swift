import Foundation
import NIOCore

/// How every provider that starts an agent starts it: the same environment and arguments,
/// whether the agent is a child process here (`local`), a supervised process over SSH or an
/// EC2 instance's first boot. `home` is the agent's own folder, holding `state/` (the
/// agent's state), `facts.d/` (custom facts its scripts write) and `work/` (where jobs run).
enum AgentLaunch {
    /// `CONDUCTOR_*` variables of the agent, inherited by its scripts (docs/agent.md).
    static func environment(_ request: InstanceStartRequest, brokerURL: String, home: String) -> [(String, String)] {
        [
            ("CONDUCTOR_BROKER_URL", brokerURL), ("CONDUCTOR_INSTANCE_ID", request.instanceID),
            ("CONDUCTOR_DEPLOYMENT", "\(request.deployment)@\(request.environment)"), ("CONDUCTOR_MEMBER", request.member),
            ("CONDUCTOR_TRUSTED_KEYS", request.trustedKeys.joined(separator: " ")), ("CONDUCTOR_WORK_DIR", home + "/work"),
            ("CONDUCTOR_FACTS_DIR", home + "/facts.d"),
        ]
    }

    /// `conductor agent …`, without the executable.
    static func arguments(_ request: InstanceStartRequest, home: String, heartbeatInterval: Double, logLevel: String) -> [String] {
        [
            "agent", "--state-dir", home + "/state", "--facts-dir", home + "/facts.d", "--trusted-user", request.trustedUser,
            "--heartbeat-interval", "\(heartbeatInterval)", "--refresh-interval", "5", "--grace-period", "5", "--log-level", logLevel,
        ]
    }
}

/// URLs as a remote instance must see them: a loopback or wildcard host (`127.0.0.1`,
/// `0.0.0.0`, `::1`) names this machine only from here, so it is replaced with an address
/// of this machine the instance reaches.
enum InstanceURL {
    static func isLocalOnly(_ host: String) -> Bool {
        ListenAddress.isLoopback(host) || ListenAddress.isWildcard(host)
    }

    /// Where a remote instance keeps the CA certificate it verifies the bus with: in the
    /// agent's folder (`home`), beside agent.env.
    static func busCAPath(home: String) -> String { home + "/bus-ca.pem" }

    /// The bus URL of an agent on another machine, and the CA certificate (PEM text) its
    /// provider puts at `busCAPath(home)`: `url` (the embedded bus's loopback URL) at
    /// `address`; when other machines reach the bus over TLS only, `amqps` to that
    /// listener's port, verifying the broker against that CA (`cacertfile`), else against
    /// the instance's system trust store.
    static func remoteBus(_ url: String, reach: BusReach, address: String, home: String, provider: String) throws(ProviderError) -> (
        url: String, caCertificate: String?
    ) {
        let moved = Self.replacingHost(of: url, with: address)
        guard case .reachableOverTLS(let tls) = reach, var components = URLComponents(string: moved) else { return (moved, nil) }
        // Said here, naming the address, rather than by an agent that never comes up.
        if !tls.names.isEmpty, !Self.certificateNames(tls.names, cover: address) {
            throw ProviderError(
                provider: provider,
                "the bus's certificate is for \(tls.names.joined(separator: ", ")), not for \(address), where the instance reaches this machine, so its agent would refuse the bus; give --bus-tls-cert a certificate that names \(address), or set the provider's bus_address to a name the certificate carries")
        }
        components.scheme = "amqps"
        components.port = tls.port
        var certificate: String?
        if let caFile = tls.caFile {
            do {
                certificate = try String(contentsOfFile: caFile, encoding: .utf8)
            } catch {
                throw ProviderError(provider: provider, "cannot read the bus's CA certificate \(caFile) to give the instance: \(error.localizedDescription)")
            }
            components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "cacertfile", value: Self.busCAPath(home: home))]
        }
        return (components.string ?? moved, certificate)
    }

    static func host(of url: String) -> String? { URLComponents(string: url)?.host }

    /// Whether a certificate for `names` (subject alternative names) is valid for `address`,
    /// as a TLS client checks it: the same IP address, or a DNS name, `*.` matching one label.
    static func certificateNames(_ names: [String], cover address: String) -> Bool {
        let host = address.hasPrefix("[") && address.hasSuffix("]") ? String(address.dropFirst().dropLast()) : address
        if let ip = try? SocketAddress(ipAddress: host, port: 0) {
            return names.contains { (try? SocketAddress(ipAddress: $0, port: 0))?.ipAddress == ip.ipAddress }
        }
        let lowered = host.lowercased()
        return names.map { $0.lowercased() }.contains { name in
            guard name.hasPrefix("*.") else { return name == lowered }
            let suffix = name.dropFirst()
            guard lowered.hasSuffix(suffix) else { return false }
            let label = lowered.dropLast(suffix.count)
            return !label.isEmpty && !label.contains(".")
        }
    }

    /// `url` with `address` as its host (bracketed when it is an IPv6 address).
    static func replacingHost(of url: String, with address: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.host = address.contains(":") ? "[\(address)]" : address
        return components.string ?? url
    }
}
