import AMQPClient
import Crypto
import Foundation
import Mesh
import MeshClient

/// What an agent started by hand receives when it enrolls: its own login and whom to
/// trust. `conductor agent enroll` writes it to `<state-dir>/enrollment.json` (0600), and
/// `conductor agent` without `--broker` starts from it. docs/agent.md, "Enrolment".
public struct EnrollmentGrant: Codable, Sendable, Hashable {
    public var instanceID: String
    /// The bus as this agent reaches it, with its own login.
    public var brokerURL: String
    public var trustedUser: String
    /// `ed25519:<base64>` keys whose signature its jobs and runs must carry.
    public var trustedKeys: [String]

    public init(instanceID: String, brokerURL: String, trustedUser: String, trustedKeys: [String]) {
        self.instanceID = instanceID
        self.brokerURL = brokerURL
        self.trustedUser = trustedUser
        self.trustedKeys = trustedKeys
    }

    enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id"
        case brokerURL = "broker_url"
        case trustedUser = "trusted_user"
        case trustedKeys = "trusted_keys"
    }
}

/// One-time invitations for agents started by hand, and their redemption: the operator
/// asks for an invitation naming the agent's instance id (`conductor agent invite`), the
/// machine presents its token once to the coordinator's HTTP API (`conductor agent
/// enroll`), and the coordinator makes the agent's login (`AgentIdentity`) and queues as a
/// launch does for the agents it starts. The token is random (256 bits), kept only as its
/// SHA-256, expires, and works once.
public struct AgentEnrollment: Sendable {
    public var store: any StateStore
    public var accounts: BusAccounts
    /// The coordinator's login, to declare the agent's queues.
    public var console: AMQPConnectionConfiguration
    /// The bus as agents reach it, without a login (`LaunchBus.agentURL`).
    public var agentBrokerURL: String
    public var trustedUser: String
    public var trustedKeys: [String]

    public init(
        store: any StateStore, accounts: BusAccounts, console: AMQPConnectionConfiguration, agentBrokerURL: String, trustedUser: String,
        trustedKeys: [String]
    ) {
        self.store = store
        self.accounts = accounts
        self.console = console
        self.agentBrokerURL = agentBrokerURL
        self.trustedUser = trustedUser
        self.trustedKeys = trustedKeys
    }

    /// Records an invitation and returns its token (shown once, never stored).
    public static func invite(instanceID: String, validFor lifetime: Duration, store: any StateStore, actor: AuditActor) async throws -> String {
        do {
            _ = try AgentName(instance: instanceID)
        } catch {
            throw LaunchError(.invalidRequest, "'\(instanceID)' cannot be an agent's instance id: \(error.message)")
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let seconds = Double(lifetime.components.seconds) + Double(lifetime.components.attoseconds) / 1e18
        try await store.recordAgentInvite(instanceID: instanceID, tokenSHA256: Self.digest(token), expiresAt: Date().addingTimeInterval(seconds), actor: actor)
        return token
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Why an enrolment was refused (the HTTP answer's status and text).
    public struct Refusal: Error, Sendable {
        public var status: Int
        public var message: String
    }

    /// Redeems `token`: makes the agent's login and queues and returns them. `reachedAt`
    /// is this machine's address the request came to: a loopback bus URL is given with it,
    /// so the agent reaches the bus where it reached the coordinator.
    public func enroll(token: String?, reachedAt: String?) async -> Result<EnrollmentGrant, Refusal> {
        guard let token, !token.isEmpty else {
            return .failure(Refusal(status: 401, message: "enrolment needs the invitation's token: Authorization: Bearer <token>"))
        }
        let instanceID: String
        do {
            guard let redeemed = try await self.store.redeemAgentInvite(tokenSHA256: Self.digest(token), actor: .system) else {
                return .failure(Refusal(status: 401, message: "this invitation is unknown, expired or used already; ask for a new one (conductor agent invite)"))
            }
            instanceID = redeemed
        } catch {
            return .failure(Refusal(status: 500, message: "the invitation could not be read: \(error)"))
        }
        do {
            let identity = AgentIdentity(agent: try AgentName(instance: instanceID), password: LaunchBus.password())
            try await self.accounts.create(identity)
            let console = try await MeshConsole.connect(self.console)
            do {
                try await console.provisionQueues(for: identity.agent)
                try? await console.close()
            } catch {
                try? await console.close()
                throw error
            }
            var url = identity.url(from: self.agentBrokerURL)
            if let host = InstanceURL.host(of: url), InstanceURL.isLocalOnly(host), let reachedAt, !InstanceURL.isLocalOnly(reachedAt) {
                url = InstanceURL.replacingHost(of: url, with: reachedAt)
            }
            return .success(EnrollmentGrant(instanceID: instanceID, brokerURL: url, trustedUser: self.trustedUser, trustedKeys: self.trustedKeys))
        } catch {
            return .failure(Refusal(status: 502, message: "the agent's login could not be made (the invitation is used up; ask for a new one): \(error)"))
        }
    }
}
