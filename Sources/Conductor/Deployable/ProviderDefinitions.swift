import Foundation
import Mesh

/// A provider a deployable defines under `providers:` and its instances name with
/// `provider: NAME`: a pool of SSH hosts, or an EC2 account and region. The built-in
/// `local` and `agents` need no definition. docs/launch.md.
public struct ProviderDefinition: Hashable, Sendable {
    public var name: String
    public var settings: ProviderSettings
    public var location: FileLocation
}

public enum ProviderSettings: Hashable, Sendable {
    case ssh(SSHPoolSettings)
    case ec2(EC2Settings)
    case phoneHome(PhoneHomeSettings)

    /// What `kind:` says.
    public var kind: String {
        switch self {
        case .ssh: "ssh"
        case .ec2: "ec2"
        case .phoneHome: "phone-home"
        }
    }

    /// Every kind a definition may name.
    public static let kinds = ["ssh", "ec2", "phone-home"]
}

/// One SSH host of a pool: `root@10.0.0.5`, `deploy@db.example.com:2222`.
public struct SSHHost: Hashable, Sendable, Codable, CustomStringConvertible {
    public var user: String
    public var address: String
    public var port: Int

    public init(user: String, address: String, port: Int = 22) {
        self.user = user
        self.address = address
        self.port = port
    }

    public var description: String { "\(self.user)@\(self.address)" + (self.port == 22 ? "" : ":\(self.port)") }

    /// `user@address[:port]`, `address`, `[v6address]:port`; the user and port default.
    static func parse(_ text: String, user defaultUser: String, port defaultPort: Int) -> SSHHost? {
        var rest = Substring(text)
        var user = defaultUser
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var port = defaultPort
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let host = rest[rest.index(after: rest.startIndex)..<close]
            let tail = rest[rest.index(after: close)...]
            if tail.hasPrefix(":") {
                guard let parsed = Int(tail.dropFirst()) else { return nil }
                port = parsed
            } else if !tail.isEmpty {
                return nil
            }
            rest = host
        } else if rest.filter({ $0 == ":" }).count == 1, let colon = rest.firstIndex(of: ":") {
            guard let parsed = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = parsed
            rest = rest[..<colon]
        }
        guard !user.isEmpty, !rest.isEmpty, (1...65535).contains(port), Self.isPlain(user), Self.isPlain(String(rest)) else { return nil }
        return SSHHost(user: user, address: String(rest), port: port)
    }

    /// No spaces, quotes, shell or option characters: names and addresses only.
    static func isPlain(_ text: String) -> Bool {
        !text.hasPrefix("-") && text.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._-:%".unicodeScalars.contains($0) }
    }
}

/// `kind: ssh`: members go onto hosts Conductor reaches with OpenSSH's client.
public struct SSHPoolSettings: Hashable, Sendable {
    public enum HostKeyPolicy: String, Hashable, Sendable, Codable, CaseIterable {
        /// Only hosts whose key is in known_hosts (the default).
        case strict
        /// First contact records the key; a changed key is still refused.
        case acceptNew = "accept-new"
    }

    public var hosts: [SSHHost]
    /// The private key (`ssh -i`), absolute; nil: ssh's own defaults and agent.
    public var identity: String?
    /// Absolute; nil: ssh's default (~/.ssh/known_hosts).
    public var knownHosts: String?
    public var hostKeys: HostKeyPolicy
    /// Where the binary (`bin/conductor`) and each agent's folder (`agents/<instance>`) go.
    public var installDirectory: String
    /// Run the remote steps through `sudo -n` (a login that is not root).
    public var sudo: Bool
    /// Members placed on one host before the next is used.
    public var membersPerHost: Int
    /// The `conductor` binary copied to the hosts; nil: the one running.
    public var binary: String?
    /// Seconds for a connection (ssh's ConnectTimeout).
    public var connectTimeout: Int
    /// Seconds for each remote step; copying the binary gets `copyTimeout`.
    public var stepTimeout: Int
    public var copyTimeout: Int
    /// The address the hosts reach the bus at; nil: the address this machine uses toward each host.
    public var busAddress: String?

    public init(
        hosts: [SSHHost], identity: String? = nil, knownHosts: String? = nil, hostKeys: HostKeyPolicy = .strict,
        installDirectory: String = "/opt/conductor", sudo: Bool = false, membersPerHost: Int = 1, binary: String? = nil,
        connectTimeout: Int = 10, stepTimeout: Int = 60, copyTimeout: Int = 300, busAddress: String? = nil
    ) {
        self.hosts = hosts
        self.identity = identity
        self.knownHosts = knownHosts
        self.hostKeys = hostKeys
        self.installDirectory = installDirectory
        self.sudo = sudo
        self.membersPerHost = membersPerHost
        self.binary = binary
        self.connectTimeout = connectTimeout
        self.stepTimeout = stepTimeout
        self.copyTimeout = copyTimeout
        self.busAddress = busAddress
    }

    static let keys = [
        "kind", "hosts", "user", "port", "identity", "known_hosts", "host_keys", "install_dir", "sudo", "members_per_host", "binary",
        "connect_timeout", "step_timeout", "copy_timeout", "bus_address", "description",
    ]
}

/// `kind: ec2`: members are EC2 instances started with RunInstances; their user data
/// installs and starts the agent.
public struct EC2Settings: Hashable, Sendable {
    public var region: String?
    public var image: String
    public var instanceType: String
    public var keyName: String?
    public var securityGroups: [String]
    public var subnet: String?
    public var tags: [String: String]
    /// The EC2 endpoint (a test emulator); nil: AWS_ENDPOINT_URL_EC2, else AWS's.
    public var endpoint: String?
    /// The credentials profile; nil: the environment, then AWS_PROFILE or `default`.
    public var profile: String?
    /// Where an instance downloads the agent; nil: the coordinator's HTTP endpoint.
    public var agentURL: String?
    /// The SHA-256 the downloaded binary must have; nil: the running binary's.
    public var agentSHA256: String?
    public var installDirectory: String
    /// The address the instances reach the bus and the coordinator at; nil: found per instance.
    public var busAddress: String?
    /// Seconds to wait for `running` and a private address.
    public var runningTimeout: Int

    static let keys = [
        "kind", "region", "image", "instance_type", "key_name", "security_groups", "subnet", "tags", "endpoint", "profile", "agent_url",
        "agent_sha256", "install_dir", "bus_address", "running_timeout", "description",
    ]
}

/// `kind: phone-home`: instances that run no agent (appliances, images one does not
/// control) fetch their configuration from the coordinator's HTTP API and report their
/// facts to it. docs/launch.md, "Phone home".
public struct PhoneHomeSettings: Hashable, Sendable {
    /// The coordinator's HTTP API as the instances reach it (`http://10.0.0.1:8080`); nil:
    /// the address `--http` bound.
    public var url: String?

    public init(url: String? = nil) {
        self.url = url
    }

    static let keys = ["kind", "url", "description"]
}

/// A `providers:` entry as one file writes it (the deployable, or an environment file
/// that overrides some of its keys).
struct ProviderLayer: Sendable {
    var name: String
    var location: FileLocation
    var entries: [ConfigNode.Entry]
}

/// Reads merged provider entries into typed settings, reporting each problem where it was written.
struct ProviderSettingsReader {
    var sink: DiagnosticSink
    /// Relative paths (identity, known_hosts, binary) are relative to the deployable.
    let directory: String

    mutating func definition(name: String, location: FileLocation, entries: [ConfigNode.Entry]) -> ProviderDefinition? {
        let fields = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        guard let kindEntry = fields["kind"] else {
            self.sink.error(
                .missingKey, "provider '\(name)' has no 'kind'; expected one of: \(ProviderSettings.kinds.joined(separator: ", "))", at: location)
            return nil
        }
        guard let kind = self.string(kindEntry.value, "kind") else { return nil }
        switch kind {
        case "ssh":
            return self.ssh(name: name, location: location, fields: fields, entries: entries).map {
                ProviderDefinition(name: name, settings: .ssh($0), location: location)
            }
        case "ec2":
            return self.ec2(name: name, location: location, fields: fields, entries: entries).map {
                ProviderDefinition(name: name, settings: .ec2($0), location: location)
            }
        case "phone-home":
            return ProviderDefinition(name: name, settings: .phoneHome(self.phoneHome(name: name, fields: fields, entries: entries)), location: location)
        default:
            self.sink.error(
                .invalidValue,
                "unknown provider kind '\(kind)'\(Spelling.hint(for: kind, among: ProviderSettings.kinds)); expected one of: \(ProviderSettings.kinds.joined(separator: ", "))",
                at: kindEntry.value.location)
            return nil
        }
    }

    private mutating func ssh(name: String, location: FileLocation, fields: [String: ConfigNode.Entry], entries: [ConfigNode.Entry]) -> SSHPoolSettings? {
        self.checkKeys(entries, allowed: SSHPoolSettings.keys, in: "provider '\(name)' (kind ssh)")
        let user = fields["user"].flatMap { self.string($0.value, "user") } ?? "root"
        let port = fields["port"].flatMap { self.integer($0.value, "port", 1...65535) } ?? 22
        var hosts: [SSHHost] = []
        if let entry = fields["hosts"] {
            if case .list(let items) = entry.value.content, !items.isEmpty {
                for item in items {
                    guard let text = self.string(item, "a host") else { continue }
                    guard let host = SSHHost.parse(text, user: user, port: port) else {
                        self.sink.error(.invalidValue, "'\(text)' is not a host: write ADDRESS, USER@ADDRESS or USER@ADDRESS:PORT", at: item.location)
                        continue
                    }
                    if hosts.contains(host) {
                        self.sink.error(.duplicateName, "host \(host) is listed twice in provider '\(name)'", at: item.location)
                    }
                    hosts.append(host)
                }
            } else {
                self.sink.error(.typeMismatch, "hosts must be a non-empty list of USER@ADDRESS[:PORT], got \(entry.value.kindName)", at: entry.value.location)
            }
        } else {
            self.sink.error(.missingKey, "provider '\(name)' (kind ssh) has no 'hosts' (a list of USER@ADDRESS[:PORT])", at: location)
        }
        var settings = SSHPoolSettings(hosts: hosts)
        settings.identity = fields["identity"].flatMap { self.path($0.value, "identity") }
        settings.knownHosts = fields["known_hosts"].flatMap { self.path($0.value, "known_hosts") }
        if let entry = fields["host_keys"], let text = self.string(entry.value, "host_keys") {
            if let policy = SSHPoolSettings.HostKeyPolicy(rawValue: text) {
                settings.hostKeys = policy
            } else {
                let names = SSHPoolSettings.HostKeyPolicy.allCases.map(\.rawValue)
                self.sink.error(.invalidValue, "host_keys must be one of: \(names.joined(separator: ", ")), got '\(text)'\(Spelling.hint(for: text, among: names))", at: entry.value.location)
            }
        }
        if let entry = fields["install_dir"], let text = self.string(entry.value, "install_dir") {
            if text.hasPrefix("/"), !text.contains("'"), !text.contains("\n"), text != "/" {
                settings.installDirectory = text
            } else {
                self.sink.error(.invalidValue, "install_dir must be an absolute path on the host (not '/', no quotes), got '\(text)'", at: entry.value.location)
            }
        }
        if let entry = fields["sudo"] { settings.sudo = self.bool(entry.value, "sudo") ?? false }
        if let entry = fields["members_per_host"] { settings.membersPerHost = self.integer(entry.value, "members_per_host", 1...1000) ?? 1 }
        settings.binary = fields["binary"].flatMap { self.path($0.value, "binary") }
        if let entry = fields["connect_timeout"] { settings.connectTimeout = self.integer(entry.value, "connect_timeout", 1...600) ?? 10 }
        if let entry = fields["step_timeout"] { settings.stepTimeout = self.integer(entry.value, "step_timeout", 1...3600) ?? 60 }
        if let entry = fields["copy_timeout"] { settings.copyTimeout = self.integer(entry.value, "copy_timeout", 1...7200) ?? 300 }
        settings.busAddress = fields["bus_address"].flatMap { self.string($0.value, "bus_address") }
        return settings
    }

    private mutating func ec2(name: String, location: FileLocation, fields: [String: ConfigNode.Entry], entries: [ConfigNode.Entry]) -> EC2Settings? {
        self.checkKeys(entries, allowed: EC2Settings.keys, in: "provider '\(name)' (kind ec2)")
        guard let imageEntry = fields["image"] else {
            self.sink.error(.missingKey, "provider '\(name)' (kind ec2) has no 'image' (an AMI id)", at: location)
            return nil
        }
        guard let image = self.string(imageEntry.value, "image") else { return nil }
        var tags: [String: String] = [:]
        if let entry = fields["tags"] {
            if let map = entry.value.entries {
                for tag in map {
                    if tag.key.hasPrefix("conductor:") {
                        self.sink.error(.invalidName, "tag '\(tag.key)': conductor: tags are Conductor's own", at: tag.keyLocation)
                    }
                    if let value = self.string(tag.value, "tag \(tag.key)") { tags[tag.key] = value }
                }
            } else {
                self.sink.error(.typeMismatch, "tags must be a map of names to strings, got \(entry.value.kindName)", at: entry.value.location)
            }
        }
        var groups: [String] = []
        if let entry = fields["security_groups"] {
            if case .list(let items) = entry.value.content {
                groups = items.compactMap { self.string($0, "a security group") }
            } else if let one = self.string(entry.value, "security_groups") {
                groups = [one]
            }
        }
        var installDirectory = "/opt/conductor"
        if let entry = fields["install_dir"], let text = self.string(entry.value, "install_dir") {
            if text.hasPrefix("/"), !text.contains("'"), !text.contains("\n"), text != "/" {
                installDirectory = text
            } else {
                self.sink.error(.invalidValue, "install_dir must be an absolute path on the instance (not '/', no quotes), got '\(text)'", at: entry.value.location)
            }
        }
        var sha: String?
        if let entry = fields["agent_sha256"], let text = self.string(entry.value, "agent_sha256") {
            if text.count == 64, text.allSatisfy(\.isHexDigit) {
                sha = text.lowercased()
            } else {
                self.sink.error(.invalidValue, "agent_sha256 must be 64 hexadecimal digits, got '\(text)'", at: entry.value.location)
            }
        }
        return EC2Settings(
            region: fields["region"].flatMap { self.string($0.value, "region") }, image: image,
            instanceType: fields["instance_type"].flatMap { self.string($0.value, "instance_type") } ?? "t3.micro",
            keyName: fields["key_name"].flatMap { self.string($0.value, "key_name") }, securityGroups: groups,
            subnet: fields["subnet"].flatMap { self.string($0.value, "subnet") }, tags: tags,
            endpoint: fields["endpoint"].flatMap { self.string($0.value, "endpoint") },
            profile: fields["profile"].flatMap { self.string($0.value, "profile") },
            agentURL: fields["agent_url"].flatMap { self.string($0.value, "agent_url") }, agentSHA256: sha,
            installDirectory: installDirectory, busAddress: fields["bus_address"].flatMap { self.string($0.value, "bus_address") },
            runningTimeout: fields["running_timeout"].flatMap { self.integer($0.value, "running_timeout", 1...3600) } ?? 300)
    }

    private mutating func phoneHome(name: String, fields: [String: ConfigNode.Entry], entries: [ConfigNode.Entry]) -> PhoneHomeSettings {
        self.checkKeys(entries, allowed: PhoneHomeSettings.keys, in: "provider '\(name)' (kind phone-home)")
        guard let entry = fields["url"], let text = self.string(entry.value, "url") else { return PhoneHomeSettings() }
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil, url.query == nil else {
            self.sink.error(.invalidValue, "url must be the coordinator's HTTP API as the instances reach it, like http://10.0.0.1:8080, got '\(text)'", at: entry.value.location)
            return PhoneHomeSettings()
        }
        return PhoneHomeSettings(url: text.hasSuffix("/") ? String(text.dropLast()) : text)
    }

    // MARK: - Small readers

    private mutating func checkKeys(_ entries: [ConfigNode.Entry], allowed: [String], in place: String) {
        for entry in entries where !allowed.contains(entry.key) {
            self.sink.error(
                .unknownKey,
                "unknown key '\(entry.key)' in \(place)\(Spelling.hint(for: entry.key, among: allowed)); expected one of: \(allowed.joined(separator: ", "))",
                at: entry.keyLocation)
        }
    }

    private mutating func string(_ node: ConfigNode, _ what: String) -> String? {
        guard let scalar = node.scalar, scalar.type != .null, !scalar.text.isEmpty else {
            self.sink.error(.typeMismatch, "\(what) must be a non-empty string, got \(node.kindName)", at: node.location)
            return nil
        }
        return scalar.text
    }

    private mutating func integer(_ node: ConfigNode, _ what: String, _ range: ClosedRange<Int>) -> Int? {
        guard node.scalar?.type == .int, case .int(let value) = node.meshValue else {
            self.sink.error(.typeMismatch, "\(what) must be an integer, got \(node.kindName)", at: node.location)
            return nil
        }
        guard range.contains(Int(value)) else {
            self.sink.error(.invalidValue, "\(what) must be from \(range.lowerBound) to \(range.upperBound), got \(value)", at: node.location)
            return nil
        }
        return Int(value)
    }

    private mutating func bool(_ node: ConfigNode, _ what: String) -> Bool? {
        guard node.scalar?.type == .bool, case .bool(let value) = node.meshValue else {
            self.sink.error(.typeMismatch, "\(what) must be true or false, got \(node.kindName)", at: node.location)
            return nil
        }
        return value
    }

    /// `~/x` is the user's home; a relative path is relative to the deployable.
    private mutating func path(_ node: ConfigNode, _ what: String) -> String? {
        guard let text = self.string(node, what) else { return nil }
        if text.hasPrefix("~/") { return (NSHomeDirectory() as NSString).appendingPathComponent(String(text.dropFirst(2))) }
        if text.hasPrefix("/") { return text }
        let base = self.directory.hasPrefix("/") ? self.directory : FileManager.default.currentDirectoryPath + "/" + self.directory
        return URL(fileURLWithPath: base).appendingPathComponent(text).standardizedFileURL.path
    }
}
