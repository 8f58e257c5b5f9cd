import Testing

@testable import Broker

/// `AccessControl` as a value: the verdicts and refusal texts RabbitMQ's internal
/// authorisation backend gives, without sockets.
@Suite struct AccessControlTests {
    static func access(
        _ permission: BrokerPermission? = BrokerPermission(user: "web-1", vhost: "/"), topics: [BrokerTopicPermission] = []
    ) -> AccessControl {
        AccessControl(user: "web-1", vhost: "/", permission: permission, topicPermissions: topics)
    }

    static var topic: Exchange { Exchange(name: "qmf.default.topic", type: .topic, durable: true, autoDelete: false, isInternal: false, arguments: [:]) }
    static var direct: Exchange { Exchange(name: "qmf.default.direct", type: .direct, durable: true, autoDelete: false, isInternal: false, arguments: [:]) }

    @Test func patternsAreUnanchoredAndEmptyMeansNothing() {
        let access = Self.access(BrokerPermission(user: "web-1", vhost: "/", configure: "gen", write: "", read: "^jobs$"))
        #expect(access.isAllowed(.configure, "amq.gen-x"))
        #expect(!access.isAllowed(.write, "anything"))
        #expect(access.isAllowed(.read, "jobs"))
        #expect(!access.isAllowed(.read, "jobs2"))
        #expect(!Self.access(nil).isAllowed(.read, "jobs"))
    }

    @Test func theDefaultExchangeIsCheckedAsAmqDefault() {
        let access = Self.access(BrokerPermission(user: "web-1", vhost: "/", configure: "", write: #"^amq\.default$"#, read: ""))
        #expect(throws: Never.self) { try access.check(.write, exchange: "") }
        #expect(throws: BrokerError.accessRefused("read access to exchange 'amq.default' in vhost '/' refused for user 'web-1'")) {
            try access.check(.read, exchange: "")
        }
    }

    @Test func withoutATopicPermissionEveryRoutingKeyIsAllowed() {
        let access = Self.access(topics: [BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "other", write: "^$", read: "^$")])
        #expect(access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "console.request.query"))
        #expect(access.isTopicAllowed(.read, exchange: "qmf.default.topic", routingKey: "#"))
    }

    @Test func topicPermissionsLimitRoutingAndBindingKeys() {
        let access = Self.access(topics: [BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "qmf.default.topic", write: #"^agent\.ind\."#, read: "")])
        #expect(access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "agent.ind.heartbeat.conductor.agent"))
        #expect(!access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "console.request.query"))
        // "" is "^$": only the empty binding key.
        #expect(access.isTopicAllowed(.read, exchange: "qmf.default.topic", routingKey: ""))
        #expect(!access.isTopicAllowed(.read, exchange: "qmf.default.topic", routingKey: "#"))
        #expect(throws: BrokerError.accessRefused("write access to topic 'console.request.query' in exchange 'qmf.default.topic' in vhost '/' refused for user 'web-1'")) {
            try access.checkTopic(.write, exchange: Self.topic, routingKey: "console.request.query")
        }
    }

    @Test func onlyTopicExchangesAreChecked() {
        let access = Self.access(topics: [BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "qmf.default.direct", write: "^$", read: "^$")])
        #expect(throws: Never.self) { try access.checkTopic(.write, exchange: Self.direct, routingKey: "anything") }
    }

    @Test func variablesAreTheConnectionsUserAndVhost() {
        #expect(AccessControl.expand(#"^agent\.{username}\.{vhost}$"#, user: "web-1", vhost: "prod") == #"^agent\.web-1\.prod$"#)
        #expect(AccessControl.expand("", user: "web-1", vhost: "/") == "^$")
        let access = Self.access(topics: [BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "qmf.default.topic", write: #"^from\.{username}\."#, read: #"^{vhost}$"#)])
        #expect(access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "from.web-1.x"))
        #expect(!access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "from.web-2.x"))
        #expect(access.isTopicAllowed(.read, exchange: "qmf.default.topic", routingKey: "/"))
    }

    @Test func onlyTheConnectionsOwnTopicPermissionsApply() {
        let access = Self.access(topics: [
            BrokerTopicPermission(user: "db-1", vhost: "/", exchange: "qmf.default.topic", write: "^$", read: "^$"),
            BrokerTopicPermission(user: "web-1", vhost: "other", exchange: "qmf.default.topic", write: "^$", read: "^$"),
        ])
        #expect(access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "anything"))
    }

    @Test func aPatternThatDoesNotCompileAllowsNothing() {
        let access = Self.access(topics: [BrokerTopicPermission(user: "web-1", vhost: "/", exchange: "qmf.default.topic", write: "(", read: ".*")])
        #expect(!access.isTopicAllowed(.write, exchange: "qmf.default.topic", routingKey: "x"))
        #expect(access.isTopicAllowed(.read, exchange: "qmf.default.topic", routingKey: "x"))
    }
}
