import Broker
import Foundation
import Mesh
import NIOCore
import NIOHTTP1

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
            configure: "^amq\\.gen-.*$",
            write: "^(amq\\.default|\(QMF.topicExchange.escapedForRegex)|\(QMF.directExchange.escapedForRegex))$",
            read: "^(conductor\\.agent\\.\(instance)\\.(jobs|requests)|amq\\.gen-.*)$"
        )
    }

    /// The topic permission on `qmf.default.topic`: indications only, and no binding.
    public static let topicPermission = (exchange: QMF.topicExchange, write: "^agent\\.ind\\.", read: "^$")

    /// The URL the agent connects with: `template` (the bus as agents reach it) with this
    /// login in place of whatever user it names.
    public func url(from template: String) -> String {
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
        user: "recipe", vhost: "/", configure: "^amq\\.gen-.*$",
        write: "^(amq\\.default|\(QMF.topicExchange.escapedForRegex)|\(QMF.directExchange.escapedForRegex))$", read: "^amq\\.gen-.*$")
}

extension String {
    fileprivate var escapedForRegex: String { self.replacingOccurrences(of: ".", with: "\\.") }
}

/// Makes and removes agents' logins through the management HTTP API that RabbitMQ's
/// `rabbitmq_management` plugin and our broker's admin API share (the same paths, bodies
/// and basic authentication), so one code path serves both buses.
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
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty,
            let user = components.user, let password = components.password
        else {
            throw LaunchError(.invalidRequest, "the bus's management API must be given as http://USER:PASSWORD@HOST:PORT, not '\(Self.redacted(url))'")
        }
        self.init(admin: BrokerAdminClient(host: host, port: components.port ?? 15672, username: user, password: password, timeout: .seconds(10)), vhost: vhost)
    }

    /// The URL without its password, for errors.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "****"
        return components.string ?? url
    }

    var address: String { "http://\(self.admin.host):\(self.admin.port)" }

    /// Fails with what is wrong unless the API answers and the login may manage users.
    public func check() async throws(LaunchError) {
        _ = try await self.send(.GET, "/api/users", body: nil, doing: "list the bus's users")
    }

    /// Creates (or updates) the agent's user, its permissions and its topic permission.
    /// Idempotent: a roll-forward makes the same login again.
    public func create(_ identity: AgentIdentity) async throws(LaunchError) {
        let user = AgentIdentity.percentEncoded(identity.user)
        let vhost = AgentIdentity.percentEncoded(self.vhost)
        // `tags` for RabbitMQ, `administrator` for ours; each ignores the other's.
        try await self.send(.PUT, "/api/users/\(user)", body: ["password": identity.password, "tags": "", "administrator": false], doing: "create \(identity.user)")
        let permission = identity.permission
        try await self.send(
            .PUT, "/api/permissions/\(vhost)/\(user)", body: ["configure": permission.configure, "write": permission.write, "read": permission.read],
            doing: "set the permissions of \(identity.user)")
        let topic = AgentIdentity.topicPermission
        try await self.send(
            .PUT, "/api/topic-permissions/\(vhost)/\(user)", body: ["exchange": topic.exchange, "write": topic.write, "read": topic.read],
            doing: "set the topic permission of \(identity.user)")
    }

    /// Deletes the user (the broker closes its connections); a user already gone is not an error.
    public func remove(user: String) async throws(LaunchError) {
        try await self.send(.DELETE, "/api/users/\(AgentIdentity.percentEncoded(user))", body: nil, doing: "delete \(user)", missingIsFine: true)
    }

    @discardableResult
    private func send(_ method: HTTPMethod, _ path: String, body: [String: any Sendable]?, doing: String, missingIsFine: Bool = false) async throws(LaunchError) -> BrokerAdminClient.Response {
        let bytes: [UInt8]? = body.map { Array((try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])) ?? Data()) }
        let response: BrokerAdminClient.Response
        do {
            response = try await self.admin.request(method, path, body: bytes)
        } catch {
            throw LaunchError(.busAdministration, "cannot \(doing): the bus's management API at \(self.address) did not answer (\(error)); RabbitMQ needs the rabbitmq_management plugin, and --bus-admin its address")
        }
        switch response.status {
        case 200..<300:
            return response
        case 404 where missingIsFine:
            return response
        case 401:
            throw LaunchError(.busAdministration, "cannot \(doing): the management API at \(self.address) refused the login '\(self.admin.username)' (401)")
        case 403:
            throw LaunchError(
                .busAdministration, "cannot \(doing): '\(self.admin.username)' may not manage users at \(self.address) (403); it needs the administrator tag")
        default:
            throw LaunchError(.busAdministration, "cannot \(doing): the management API at \(self.address) answered \(response.status): \(response.text.prefix(300))")
        }
    }
}
