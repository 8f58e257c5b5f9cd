import NIOHTTP1

/// Users, permissions and topic permissions through the admin API, on the paths and with
/// the JSON of RabbitMQ's management API (docs/broker.md, "Admin API"). Changes apply to
/// open connections at their next operation (`BrokerConnection.access`); `handle` saves
/// them to users.json before answering.
extension AdminRequestHandler {
    // MARK: - Users

    func users() -> [AdminAPI.UserInfo] {
        self.core.authenticator.users.keys.sorted().map { AdminAPI.UserInfo(name: $0, administrator: self.administrators.contains($0)) }
    }

    func addUser(_ name: String, _ body: [UInt8]) -> AdminResponse {
        guard !name.isEmpty else { return .failure(.badRequest, "a user needs a name") }
        guard let request = try? AdminAPI.decode(AdminAPI.NewUser.self, from: body) else {
            return .failure(.badRequest, "expected {\"password\": ..., \"tags\": \"administrator\"|\"\"} or {\"password\": ..., \"administrator\": true|false}")
        }
        let existed = self.core.authenticator.users[name] != nil
        self.core.authenticator.users[name] = BrokerUser(name: name, password: request.password)
        if request.isAdministrator {
            self.administrators.insert(name)
        } else {
            self.administrators.remove(name)
        }
        let persisted = self.core.userStore.persists
        return .json(AdminAPI.UserInfo(name: name, administrator: request.isAdministrator, persisted: persisted), existed ? .ok : .created)
    }

    /// As RabbitMQ: the user's permissions and topic permissions go with it, and its open
    /// connections are closed with 320 "user 'NAME' is deleted".
    func deleteUser(_ name: String) -> AdminResponse {
        guard self.core.authenticator.users.removeValue(forKey: name) != nil else {
            return .failure(.notFound, "no user '\(name)'")
        }
        self.administrators.remove(name)
        self.core.authenticator.access[name] = nil
        self.core.permissions[name] = nil
        self.core.topicPermissions[name] = nil
        for connection in self.core.connections.values where connection.user == name {
            connection.shutdown(reason: "user '\(name)' is deleted")
        }
        return .json(AdminAPI.UserInfo(name: name, administrator: false, persisted: self.core.userStore.persists))
    }

    // MARK: - Permissions

    func permissions() -> [AdminAPI.Permission] {
        self.core.allPermissions.map(Self.info)
    }

    func permissions(user: String) -> AdminResponse {
        guard self.core.authenticator.users[user] != nil else { return .failure(.notFound, "no user '\(user)'") }
        return .json(self.permissions().filter { $0.user == user })
    }

    func permission(vhost: String, user: String) -> AdminResponse {
        guard let permission = self.core.permission(user: user, vhost: vhost) else {
            return .failure(.notFound, "no permissions for user '\(user)' in vhost '\(vhost)'")
        }
        return .json(Self.info(permission))
    }

    func setPermissions(vhost: String, user: String, _ body: [UInt8]) -> AdminResponse {
        if let refusal = self.unknown(vhost: vhost, user: user) { return refusal }
        guard let request = try? AdminAPI.decode(AdminAPI.Permission.self, from: body) else {
            return .failure(.badRequest, "expected {\"configure\": ..., \"write\": ..., \"read\": ...}")
        }
        if let refusal = Self.invalidPattern(in: [request.configure, request.write, request.read]) { return refusal }
        self.core.permissions[user, default: [:]][vhost] = BrokerPermission(
            user: user, vhost: vhost, configure: request.configure, write: request.write, read: request.read)
        self.core.authenticator.access[user, default: []].insert(vhost)
        var answer = request
        (answer.user, answer.vhost, answer.persisted) = (user, vhost, self.core.userStore.persists)
        return .json(answer)
    }

    /// The vhost is closed to new connections of the user; open ones find every check
    /// refused (as with RabbitMQ, which does not close them).
    func clearPermissions(vhost: String, user: String) -> AdminResponse {
        guard self.core.permissions[user]?.removeValue(forKey: vhost) != nil else {
            return .failure(.notFound, "no permissions for user '\(user)' in vhost '\(vhost)'")
        }
        self.core.authenticator.access[user]?.remove(vhost)
        return .json(AdminAPI.Cleared(removed: 1, persisted: self.core.userStore.persists))
    }

    // MARK: - Topic permissions

    func topicPermissions() -> [AdminAPI.TopicPermission] {
        self.core.allTopicPermissions.map(Self.info)
    }

    func topicPermissions(user: String) -> AdminResponse {
        guard self.core.authenticator.users[user] != nil else { return .failure(.notFound, "no user '\(user)'") }
        return .json(self.topicPermissions().filter { $0.user == user })
    }

    /// 404 when there are none, as RabbitMQ answers.
    func topicPermissions(vhost: String, user: String) -> AdminResponse {
        let entries = self.topicPermissions().filter { $0.user == user && $0.vhost == vhost }
        guard !entries.isEmpty else { return .failure(.notFound, "no topic permissions for user '\(user)' in vhost '\(vhost)'") }
        return .json(entries)
    }

    /// Sets (or replaces) the user's topic permission for one exchange. As in RabbitMQ the
    /// exchange need not exist, nor be a topic exchange yet: it applies while it is one.
    func setTopicPermission(vhost: String, user: String, _ body: [UInt8]) -> AdminResponse {
        if let refusal = self.unknown(vhost: vhost, user: user) { return refusal }
        guard let request = try? AdminAPI.decode(AdminAPI.TopicPermission.self, from: body) else {
            return .failure(.badRequest, "expected {\"exchange\": ..., \"write\": ..., \"read\": ...}")
        }
        // Checked as they will be compiled, with {username} and {vhost} filled in.
        let expanded = [request.write, request.read].map { AccessControl.expand($0, user: user, vhost: vhost) }
        if let refusal = Self.invalidPattern(in: expanded) { return refusal }
        let existed = self.core.topicPermissions[user]?[vhost]?[request.exchange] != nil
        self.core.topicPermissions[user, default: [:]][vhost, default: [:]][request.exchange] = BrokerTopicPermission(
            user: user, vhost: vhost, exchange: request.exchange, write: request.write, read: request.read)
        var answer = request
        (answer.user, answer.vhost, answer.persisted) = (user, vhost, self.core.userStore.persists)
        return .json(answer, existed ? .ok : .created)
    }

    /// All of the user's topic permissions in the vhost (RabbitMQ's API has no per-exchange
    /// delete); 404 when there are none.
    func clearTopicPermissions(vhost: String, user: String) -> AdminResponse {
        guard let removed = self.core.topicPermissions[user]?.removeValue(forKey: vhost), !removed.isEmpty else {
            return .failure(.notFound, "no topic permissions for user '\(user)' in vhost '\(vhost)'")
        }
        if self.core.topicPermissions[user]?.isEmpty == true { self.core.topicPermissions[user] = nil }
        return .json(AdminAPI.Cleared(removed: removed.count, persisted: self.core.userStore.persists))
    }

    // MARK: - Helpers

    private func unknown(vhost: String, user: String) -> AdminResponse? {
        guard self.core.vhosts[vhost] != nil else { return .failure(.notFound, "no vhost '\(vhost)'") }
        guard self.core.authenticator.users[user] != nil else { return .failure(.notFound, "no user '\(user)'") }
        return nil
    }

    /// RabbitMQ refuses a pattern its regular expression engine cannot compile (400).
    private static func invalidPattern(in patterns: [String]) -> AdminResponse? {
        for pattern in patterns where !pattern.isEmpty && (try? Regex(pattern)) == nil {
            return .failure(.badRequest, "invalid regular expression '\(pattern)'")
        }
        return nil
    }

    private static func info(_ permission: BrokerPermission) -> AdminAPI.Permission {
        AdminAPI.Permission(user: permission.user, vhost: permission.vhost, configure: permission.configure, write: permission.write, read: permission.read)
    }

    private static func info(_ topic: BrokerTopicPermission) -> AdminAPI.TopicPermission {
        AdminAPI.TopicPermission(user: topic.user, vhost: topic.vhost, exchange: topic.exchange, write: topic.write, read: topic.read)
    }
}
