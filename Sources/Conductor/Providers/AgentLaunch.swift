import Foundation

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
        host.hasPrefix("127.") || host == "localhost" || host == "::1" || host == "[::1]" || host == "0.0.0.0" || host == "::"
    }

    static func host(of url: String) -> String? { URLComponents(string: url)?.host }

    /// `url` with `address` as its host (bracketed when it is an IPv6 address).
    static func replacingHost(of url: String, with address: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.host = address.contains(":") ? "[\(address)]" : address
        return components.string ?? url
    }
}
