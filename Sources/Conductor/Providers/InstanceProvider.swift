import Foundation

/// What a provider is told when it starts one member of a deployment. Everything the
/// agent needs to join the bus is here; the provider decides how it gets there (a child
/// process, a network namespace, cloud-init user data, a container's environment).
public struct InstanceStartRequest: Sendable, Hashable {
    public var deployment: String
    public var environment: String
    /// The member, e.g. `web[1]`.
    public var member: String
    /// The member's position in the plan (0, 1, 2…): stable across re-runs, so a
    /// provider may derive an address from it.
    public var ordinal: Int
    /// The agent's instance id (`conductor:agent:<instanceID>`), recorded before the start.
    public var instanceID: String
    /// The AMQP URL the agent connects with, credentials included.
    public var brokerURL: String
    /// The AMQP user whose jobs the agent accepts (the coordinator's).
    public var trustedUser: String
    /// A directory of this instance's own, on the coordinator's machine.
    public var workDirectory: String
    /// Public keys (`ed25519:<base64>`) whose signature the agent must require on jobs and
    /// run requests; empty: the agent checks `user_id` only.
    public var trustedKeys: [String]
    /// Whether machines other than this one can reach the bus at `brokerURL` (after its
    /// loopback host is replaced by an address they route to).
    public var busReach: BusReach = .loopbackOnly

    public init(
        deployment: String, environment: String, member: String, ordinal: Int, instanceID: String,
        brokerURL: String, trustedUser: String, workDirectory: String, trustedKeys: [String] = []
    ) {
        self.trustedKeys = trustedKeys
        self.deployment = deployment
        self.environment = environment
        self.member = member
        self.ordinal = ordinal
        self.instanceID = instanceID
        self.brokerURL = brokerURL
        self.trustedUser = trustedUser
        self.workDirectory = workDirectory
    }
}

/// Who can reach a launch's bus, and how.
public enum BusReach: Sendable, Hashable, Codable {
    /// An embedded bus on 127.0.0.1: only instances on this machine.
    case loopbackOnly
    /// At the bus URL's port: an embedded bus on another or every address in clear text
    /// (`--insecure`), or a broker given by URL.
    case reachable
    /// An embedded bus whose plain listener stays on loopback (the URL's port, for this
    /// machine's agents), while other machines connect with TLS to `tls`.
    case reachableOverTLS(BusTLSEndpoint)

    /// Whether instances on other machines can reach the bus at all.
    public var beyondLoopback: Bool { self != .loopbackOnly }
}

/// The amqps listener of an embedded bus as agents on other machines use it.
public struct BusTLSEndpoint: Sendable, Hashable, Codable {
    public var port: Int
    /// PEM CA certificate(s) agents verify the broker's certificate with, copied to each
    /// remote instance; nil: the instances' system trust store.
    public var caFile: String?
    /// The IP addresses and DNS names the broker's certificate is for (its subject
    /// alternative names), which the address an agent connects to must be one of; empty:
    /// not known, left to the agent's own check.
    public var names: [String]

    public init(port: Int, caFile: String?, names: [String] = []) {
        self.port = port
        self.caFile = caFile
        self.names = names
    }
}

/// How to find a started instance again, also from another process (`conductor
/// terminate`, `conductor fwd`): it is stored in the instance's `provider_handle`.
public struct InstanceHandle: Sendable, Hashable, Codable {
    public var instanceID: String
    /// Provider-specific: a pid, a VM id, a container id.
    public var value: String
    /// The address the instance reports as its `ipaddress` fact, when the provider knows it.
    public var address: String?
    /// The agent serving the instance, when it is not `conductor:agent:<instanceID>` (a
    /// provider that places members on agents that already run).
    public var agent: String?
    /// The provider kind that made it (`ssh`, `ec2`) when its value alone reaches the
    /// instance again: `terminate` stops it without the deployable that defined the provider.
    public var kind: String?
    /// SHA-256 (hex) of the bearer token the instance presents to the coordinator's HTTP
    /// API (phone-home configs and facts, the agent download); the token itself is not kept.
    public var tokenSHA256: String?

    public init(
        instanceID: String, value: String, address: String? = nil, agent: String? = nil, kind: String? = nil, tokenSHA256: String? = nil
    ) {
        self.instanceID = instanceID
        self.value = value
        self.address = address
        self.agent = agent
        self.kind = kind
        self.tokenSHA256 = tokenSHA256
    }
}

/// Starts and stops the machines (or processes) that run agents. The launcher records
/// every intent before calling a provider, and looks instances up again before starting
/// anything twice; providers only have to do what they are asked. docs/launch.md.
public protocol InstanceProvider: Sendable {
    /// The name a deployable's `provider:` uses.
    var name: String { get }
    /// Starts one instance whose agent will join the bus as `request.instanceID`.
    func start(_ request: InstanceStartRequest) async throws -> InstanceHandle
    /// Stops it and everything it started; stopping an instance already gone is not an error.
    func stop(_ handle: InstanceHandle) async throws
    func isAlive(_ handle: InstanceHandle) async -> Bool
    /// The instance running with this id, if any: a coordinator that died between asking
    /// for an instance and recording its handle finds it here instead of starting another.
    func locate(instanceID: String) async -> InstanceHandle?
    /// Whether `start` starts an agent, which the launch then gives a broker login of its
    /// own (`AgentIdentity`); false for providers that place members on agents already
    /// running or whose instances run none.
    var startsAgents: Bool { get }
}

extension InstanceProvider {
    public var startsAgents: Bool { true }
}

extension DirectInstanceProvider {
    public var startsAgents: Bool { false }
}

public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public var provider: String
    public var message: String

    public init(provider: String, _ message: String) {
        self.provider = provider
        self.message = message
    }

    public var description: String { "provider \(provider): \(message)" }
}
