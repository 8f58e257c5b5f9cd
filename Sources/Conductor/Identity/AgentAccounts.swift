import Broker
import Foundation
import Mesh

/// One agent's own broker login (`agent.<instance>`), made by the coordinator before the
/// agent starts and removed when it is terminated (docs/agent.md, "Identity").
///
/// What the login may do confines the agent to its own queues (docs/protocol.md,
/// "Permissions"): it consumes its inbox and its request queue (which the coordinator
/// declares and binds for it) and the server-named reply queues it declares itself; it
/// publishes replies (default exchange), indications (`agent.ind.*` on the topic exchange)
/// and requests to the coordinator (direct exchange); it binds nothing and declares no
/// exchange, so it cannot read another agent's jobs or requests, and it cannot publish a
/// `console.*` subject. Its `user_id` on every answer is what the coordinator checks.
public struct AgentIdentity: Sendable, Hashable {
    public var agent: AgentName
    public var password: String

    public init(agent: AgentName, password: String) {
        self.agent = agent
        self.password = password
    }

    public var user: String { self.agent.brokerUser }

    /// The state store's name for the password (a deployment secret, generated once).
    static func secretName(instanceID: String) -> String { "agent-login:\(instanceID)" }

    /// `configure`, `write` and `read` of the login on the bus's vhost (RabbitMQ's
    /// unanchored regular expressions, anchored here).
    public var permission: (configure: String, write: String, read: String) {
        let instance = self.agent.instance.replacingOccurrences(of: ".", with: "\\.")
        return (
            configure: "^(amq\\.gen-.*|conductor\\.reply\\.[0-9a-f-]+)$",
            write: "^(amq\\.default|\(QMF.topicExchange.escapedForRegex)|\(QMF.directExchange.escapedForRegex))$",
            read: "^(conductor\\.agent\\.\(instance)\\.(jobs|requests)|amq\\.gen-.*|conductor\\.reply\\.[0-9a-f-]+)$"
        )
    }

    /// The topic permission on `qmf.default.topic`: indications only, and no binding.
    public static let topicPermission = (exchange: QMF.topicExchange, write: "^agent\\.ind\\.", read: "^$")

    /// The URL the agent connects with: `template` (the bus as agents reach it) with this
    /// login in place of whatever user it names; in each URL of a comma-separated list (the
    /// nodes of a cluster).
    public func url(from template: String) -> String {
        template.split(separator: ",", omittingEmptySubsequences: false).map { self.singleURL(from: String($0)) }.joined(separator: ",")
    }

    private func singleURL(from template: String) -> String {
        guard var components = URLComponents(string: template) else { return template }
        components.percentEncodedUser = Self.percentEncoded(self.user)
        components.percentEncodedPassword = Self.percentEncoded(self.password)
        return components.string ?? template
    }

    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

/// The `recipe` login of an embedded launch bus: what commands in a shell or a script on
/// the coordinator's machine use (`conductor lock`, `signal`, `wait`, `facts`). It asks
/// the coordinator and the agents (reply queues of its own, requests on the two qmf
/// exchanges) and reads nothing else; agents do not run what it sends (it is not their
/// trusted user).
enum RecipeLogin {
    static let permission = BrokerPermission(
        user: "recipe", vhost: "/", configure: "^(amq\\.gen-.*|conductor\\.reply\\.[0-9a-f-]+)$",
        write: "^(amq\\.default|\(QMF.topicExchange.escapedForRegex)|\(QMF.directExchange.escapedForRegex))$",
        read: "^(amq\\.gen-.*|conductor\\.reply\\.[0-9a-f-]+)$")
    /// It may broadcast a locate or a query, and publish nothing else on the topic exchange.
    static let topicPermission = BrokerTopicPermission(
        user: "recipe", vhost: "/", exchange: QMF.topicExchange, write: "^console\\.request\\.(agent_locate|query)$", read: "^$")
}

extension String {
    fileprivate var escapedForRegex: String { self.replacingOccurrences(of: ".", with: "\\.") }
}

/// Makes and removes agents' logins through the management HTTP API that RabbitMQ's
/// `rabbitmq_management` plugin and our broker's admin API share (the same paths, bodies
/// and basic authentication: `BrokerAdminClient`), so one code path serves both buses.
public struct BusAccounts: Sendable {
    public var admin: BrokerAdminClient
    /// The vhost agents use (the coordinator's).
    public var vhost: String

    public init(admin: BrokerAdminClient, vhost: String) {
        self.admin = admin
        self.vhost = vhost
    }

    /// `http://USER:PASSWORD@HOST:PORT` (the management API's address and an
    /// administrator's login).
    public init(url: String, vhost: String) throws(LaunchError) {
        do {
            self.init(admin: try BrokerAdminClient(url: url), vhost: vhost)
        } catch {
            throw LaunchError(.invalidRequest, "the bus's management API: \(error.description)")
        }
    }

    /// Fails with what is wrong unless the API answers and the login may manage users.
    public func check() async throws(LaunchError) {
        try await self.attempt("list the bus's users") { _ = try await self.admin.call(.GET, "/api/users", as: [Named].self) }
    }

    private struct Named: Decodable { var name: String }

    /// Creates (or updates) the agent's user, its permissions and its topic permission.
    /// Idempotent: a roll-forward makes the same login again.
    public func create(_ identity: AgentIdentity) async throws(LaunchError) {
        let permission = identity.permission
        let topic = AgentIdentity.topicPermission
        try await self.attempt("make the login \(identity.user)") {
            try await self.admin.createUser(identity.user, password: identity.password)
            try await self.admin.setPermissions(
                user: identity.user, vhost: self.vhost, configure: permission.configure, write: permission.write, read: permission.read)
            try await self.admin.setTopicPermissions(user: identity.user, vhost: self.vhost, exchange: topic.exchange, write: topic.write, read: topic.read)
        }
    }

    /// Deletes the user (the broker closes its connections); a user already gone is not an error.
    public func remove(user: String) async throws(LaunchError) {
        try await self.attempt("delete the login \(user)") {
            do {
                try await self.admin.deleteUser(user)
            } catch let error as BrokerAdminClientError where error.code == .notFound {
                return
            }
        }
    }

    private func attempt(_ doing: String, _ body: () async throws -> Void) async throws(LaunchError) {
        do {
            try await body()
        } catch let error as BrokerAdminClientError {
            let hint = error.code == .unreachable || error.code == .timedOut
                ? "; RabbitMQ needs the rabbitmq_management plugin, and --bus-admin its address" : ""
            throw LaunchError(.busAdministration, "cannot \(doing): \(error.description)\(hint)")
        } catch {
            throw LaunchError(.busAdministration, "cannot \(doing): \(error)")
        }
    }
}
