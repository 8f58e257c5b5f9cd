import AMQPClient
import Foundation
import NIOCore
import TestSupport
import Testing

let rabbitMQTLSURL = RabbitMQEnvironment.tlsURL
let rabbitMQTLSCA = RabbitMQEnvironment.tlsCA

/// amqps:// URLs: what they configure, and what is refused.
@Suite struct TLSURLTests {
    @Test func amqpsURLsTurnOnVerifiedTLS() throws {
        let plain = try AMQPConnectionConfiguration(url: "amqp://h/")
        #expect(plain.tls == nil)
        #expect(plain.port == 5672)
        let tls = try AMQPConnectionConfiguration(url: "amqps://u:p@broker.example.com/%2F")
        #expect(tls.port == 5671)
        #expect(tls.tls == .init(caFile: nil, verifyPeer: true, verifyHostname: true))
        #expect(tls.redactedURL == "amqps://u@broker.example.com:5671/%2F")
        let options = try AMQPConnectionConfiguration(
            url: "amqps://h:5674/%2F?cacertfile=%2Ftmp%2Fca.pem&certfile=/c.pem&keyfile=/c.key&server_name_indication=rabbit&verify=verify_none&heartbeat=5")
        #expect(options.tls == .init(caFile: "/tmp/ca.pem", verifyPeer: false, serverName: "rabbit", certificateFile: "/c.pem", keyFile: "/c.key"))
        #expect(options.heartbeat == 5)
        #expect(options.port == 5674)
    }

    @Test func authMechanismChoosesHowToLogIn() throws {
        #expect(try AMQPConnectionConfiguration(url: "amqp://h/").authenticationMechanism == .plain)
        #expect(try AMQPConnectionConfiguration(url: "amqps://h/?auth_mechanism=external&certfile=/c.pem&keyfile=/c.key").authenticationMechanism == .external)
        #expect(try AMQPConnectionConfiguration(url: "amqps://h/?auth_mechanism=PLAIN").authenticationMechanism == .plain)
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "amqps://h/?auth_mechanism=amqplain") }
    }

    @Test func tlsParametersNeedAmqps() {
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "amqp://h/?cacertfile=/ca.pem") }
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "amqps://h/?verify=maybe") }
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "http://h/") }
    }
}

/// Our client against RabbitMQ's TLS listener (scripts/rabbitmq.sh, test CA), as the
/// test command sets it up.
@Suite("AMQPClient TLS against RabbitMQ", .enabled(if: rabbitMQTLSURL != nil && rabbitMQTLSCA != nil), .timeLimit(.minutes(1)))
struct RabbitMQTLSTests {
    let url = rabbitMQTLSURL ?? ""
    let ca = rabbitMQTLSCA ?? ""

    @Test func verifiedTLSRoundTrip() async throws {
        let connection = try await AMQPConnection.connect(url: self.url)
        #expect(connection.serverProperties["product"]?.stringValue == "RabbitMQ")
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        try await channel.confirmSelect()
        try await channel.publishConfirmed("secret", routingKey: queue)
        let message = try await channel.get(queue: queue, noAck: true)
        #expect(message.map { String(buffer: $0.body) } == "secret")
        try await connection.close()
    }

    @Test func refusesWhatItCannotVerify() async throws {
        var configuration = try AMQPConnectionConfiguration(url: self.url)
        // The test CA is not among the system's: verification is on by default.
        configuration.tls?.caFile = nil
        await Self.expectTLSFailure(configuration)
        // Another CA than the one that signed it.
        configuration.tls?.caFile = URL(fileURLWithPath: self.ca).deletingLastPathComponent().appendingPathComponent("other-ca.pem").path
        await Self.expectTLSFailure(configuration)
        // The certificate names 127.0.0.1 as well: connecting by address verifies.
        configuration.tls?.caFile = self.ca
        configuration.host = "127.0.0.1"
        let connection = try await AMQPConnection.connect(configuration)
        try await connection.close()
    }

    static func expectTLSFailure(_ configuration: AMQPConnectionConfiguration, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            let connection = try await AMQPConnection.connect(configuration)
            try? await connection.close()
            Issue.record("connected without a verifiable certificate", sourceLocation: sourceLocation)
        } catch let error as AMQPError {
            #expect(error.code == .tlsFailed, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }
}
