import AMQPClient
import AMQPProtocol
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Broker

/// The broker's amqps listener with our client over loopback: certificates from a CA
/// made for the test run, verification by default, client certificates when asked.
@Suite(.timeLimit(.minutes(1)))
struct TLSTests {
    static func withTLSBroker(
        verifyPeer: Bool = false,
        _ body: (_ plainPort: Int, _ tlsPort: Int, TestCertificates.Files) async throws -> Void
    ) async throws {
        let files = try await TestCertificates.files()
        var configuration = BrokerConfiguration(port: 0)
        configuration.tls = BrokerTLSConfiguration(
            port: 0, certificateChainFile: files.serverCertificate, privateKeyFile: files.serverKey,
            caFile: verifyPeer ? files.ca : nil, verifyPeer: verifyPeer)
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        let port = try await server.start()
        let tlsPort = try #require(server.tlsPort)
        do {
            try await body(port, tlsPort, files)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    /// Connects, sends a message to itself through a queue, reads it back.
    static func roundTrip(_ url: String) async throws {
        let connection = try await AMQPConnection.connect(url: url)
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        _ = try channel.publish("over tls", routingKey: queue)
        var message: AMQPMessage?
        for _ in 0..<100 {
            message = try await channel.get(queue: queue, noAck: true)
            if message != nil { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(message.map { String(buffer: $0.body) } == "over tls")
        try await connection.close()
    }

    static func expectTLSFailure(_ url: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            let connection = try await AMQPConnection.connect(url: url)
            try? await connection.close()
            Issue.record("connected, but should not have: \(url)", sourceLocation: sourceLocation)
        } catch let error as AMQPError {
            #expect(error.code == .tlsFailed, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func clientVerifiesTheBrokerByNameAndAddress() async throws {
        try await Self.withTLSBroker { plainPort, tlsPort, files in
            // The certificate names localhost and 127.0.0.1; both verify against the test CA.
            try await Self.roundTrip("amqps://guest:guest@localhost:\(tlsPort)/%2F?cacertfile=\(files.ca)")
            try await Self.roundTrip("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?cacertfile=\(files.ca)")
            // The plain listener still works alongside.
            try await Self.roundTrip("amqp://guest:guest@127.0.0.1:\(plainPort)/%2F")
        }
    }

    @Test func clientRefusesUntrustedOrMisnamedCertificates() async throws {
        try await Self.withTLSBroker { _, tlsPort, files in
            // Verification is on by default: the test CA is not among the system's.
            await Self.expectTLSFailure("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F")
            // Signed by another CA than the one trusted.
            await Self.expectTLSFailure("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?cacertfile=\(files.otherCA)")
            // An unreadable CA file is a clear error, before any connection.
            await Self.expectTLSFailure("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?cacertfile=/no/such/ca.pem")
            // Explicitly turned off, anything goes (tests only).
            try await Self.roundTrip("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?verify=verify_none")
        }
    }

    @Test func clientRefusesACertificateForAnotherName() async throws {
        let files = try await TestCertificates.files()
        var configuration = BrokerConfiguration(port: 0)
        configuration.tls = BrokerTLSConfiguration(port: 0, certificateChainFile: files.misnamedCertificate, privateKeyFile: files.misnamedKey)
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        try await server.start()
        let tlsPort = try #require(server.tlsPort)
        // Signed by the trusted CA, but for other.example.com: neither localhost nor 127.0.0.1.
        await Self.expectTLSFailure("amqps://guest:guest@localhost:\(tlsPort)/%2F?cacertfile=\(files.ca)")
        await Self.expectTLSFailure("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?cacertfile=\(files.ca)")
        // Asking for that name (SNI and the check) is what it takes.
        try await Self.roundTrip("amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?cacertfile=\(files.ca)&server_name_indication=other.example.com")
        try await server.shutdown()
    }

    @Test func plainAMQPOnTheTLSPortGoesNowhere() async throws {
        try await Self.withTLSBroker { _, tlsPort, _ in
            var configuration = try AMQPConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:\(tlsPort)/%2F")
            configuration.connectTimeout = .seconds(3)
            configuration.recovery = .disabled
            await #expect(throws: AMQPError.self) { try await AMQPConnection.connect(configuration) }
        }
    }

    @Test func clientCertificatesAreVerifiedWhenAsked() async throws {
        try await Self.withTLSBroker(verifyPeer: true) { _, tlsPort, files in
            let base = "amqps://guest:guest@127.0.0.1:\(tlsPort)/%2F?cacertfile=\(files.ca)"
            try await Self.roundTrip(base + "&certfile=\(files.clientCertificate)&keyfile=\(files.clientKey)")
            // No certificate, or one from a CA the broker does not trust: refused.
            await Self.expectFailure(base)
            await Self.expectFailure(base + "&certfile=\(files.otherClientCertificate)&keyfile=\(files.otherClientKey)")
        }
    }

    /// With TLS 1.3 the client learns of a refused certificate after its handshake, so the
    /// failure may read as TLS or as the connection closing.
    static func expectFailure(_ url: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        var configuration: AMQPConnectionConfiguration
        do { configuration = try AMQPConnectionConfiguration(url: url) } catch {
            Issue.record("bad URL \(url)", sourceLocation: sourceLocation)
            return
        }
        configuration.recovery = .disabled
        configuration.connectTimeout = .seconds(5)
        do {
            let connection = try await AMQPConnection.connect(configuration)
            try? await connection.close()
            Issue.record("connected without a trusted client certificate", sourceLocation: sourceLocation)
        } catch let error as AMQPError {
            #expect([.tlsFailed, .connectionClosed, .authenticationFailed].contains(error.code), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - SASL EXTERNAL

    static let certificateUser = "conductor-test-client"

    static func externalMachine(certificateLogin: String?) -> (ServerConnectionStateMachine, mechanisms: String) {
        let configuration = BrokerConfiguration(
            users: [BrokerUser(name: Self.certificateUser, password: "unused"), BrokerUser(name: "app", password: "pw")],
            permissions: [BrokerPermission(user: Self.certificateUser, vhost: "/")])
        var machine = ServerConnectionStateMachine(
            authenticator: .init(configuration: configuration), serverTuning: ConnectionTuning(channelMax: 2047, frameMax: 131_072, heartbeat: 60),
            peerIsLoopback: true)
        guard case .sendStart(let start) = machine.protocolHeaderReceived(.accepted, certificateLogin: certificateLogin) else { return (machine, "") }
        return (machine, String(decoding: start.mechanisms, as: UTF8.self))
    }

    static func closeCode(_ action: ServerConnectionStateMachine.Action) -> UInt16? {
        if case .sendClose(let close) = action { return close.replyCode }
        return nil
    }

    @Test func externalIsOfferedOnlyWithAVerifiedCertificate() {
        let external = AMQP.Connection.StartOk(mechanism: "EXTERNAL", response: [], locale: "en_US")
        var (withCertificate, offered) = Self.externalMachine(certificateLogin: Self.certificateUser)
        #expect(offered.split(separator: " ").contains("EXTERNAL"))
        #expect(withCertificate.startOkReceived(external) == .sendTune(.init(channelMax: 2047, frameMax: 131_072, heartbeat: 60)))
        #expect(withCertificate.user == Self.certificateUser)
        // Not offered without a certificate: asking for it is an unknown mechanism (503).
        var (without, plainOnly) = Self.externalMachine(certificateLogin: nil)
        #expect(plainOnly == "PLAIN AMQPLAIN")
        #expect(Self.closeCode(without.startOkReceived(external)) == 503)
        // A certificate naming no user of the broker: 403, as a wrong password.
        var (stranger, _) = Self.externalMachine(certificateLogin: "nobody")
        #expect(Self.closeCode(stranger.startOkReceived(external)) == 403)
        // PLAIN still works next to it.
        var (plain, _) = Self.externalMachine(certificateLogin: Self.certificateUser)
        let startOk = AMQP.Connection.StartOk(mechanism: "PLAIN", response: [0] + Array("app".utf8) + [0] + Array("pw".utf8), locale: "en_US")
        #expect(plain.startOkReceived(startOk) == .sendTune(.init(channelMax: 2047, frameMax: 131_072, heartbeat: 60)))
    }

    /// pika with `ExternalCredentials` and the test client certificate: it logs in as the
    /// certificate's CN (the only user with permissions) and round-trips a message; with a
    /// broker that has no such user it is refused with 403.
    /// Our client with `auth_mechanism=external`: in as the certificate's CN with no
    /// password; refused when the CN names no user, or when no certificate was verified.
    @Test func ourClientLogsInWithItsCertificate() async throws {
        let files = try await TestCertificates.files()
        for (users, verifyPeer, expected) in [
            ([Self.certificateUser], true, nil), (["someone-else"], true, 403), ([Self.certificateUser], false, 0),
        ] as [([String], Bool, UInt16?)] {
            var configuration = BrokerConfiguration(
                port: 0, users: users.map { BrokerUser(name: $0, password: UUID().uuidString) },
                permissions: users.map { BrokerPermission(user: $0, vhost: "/") })
            configuration.tls = BrokerTLSConfiguration(
                port: 0, certificateChainFile: files.serverCertificate, privateKeyFile: files.serverKey,
                caFile: verifyPeer ? files.ca : nil, verifyPeer: verifyPeer)
            let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
            try await server.start()
            let tlsPort = try #require(server.tlsPort)
            let url = "amqps://127.0.0.1:\(tlsPort)/%2F?cacertfile=\(files.ca)&certfile=\(files.clientCertificate)&keyfile=\(files.clientKey)&auth_mechanism=external"
            do {
                if let expected {
                    var client = try AMQPConnectionConfiguration(url: url)
                    client.recovery = .disabled
                    do {
                        let connection = try await AMQPConnection.connect(client)
                        try? await connection.close()
                        Issue.record("logged in, but should not have (users \(users), verifyPeer \(verifyPeer))")
                    } catch let error as AMQPError {
                        #expect(error.code == .authenticationFailed, "\(error)")
                        // 0: refused before start-ok (EXTERNAL not offered), no reply code.
                        if expected != 0 { #expect(error.replyCode == expected, "\(error)") }
                        if expected == 0 { #expect(error.message.contains("does not offer EXTERNAL"), "\(error)") }
                    }
                } else {
                    try await Self.roundTrip(url)
                }
            } catch {
                try? await server.shutdown()
                throw error
            }
            try await server.shutdown()
        }
    }

    @Test func pikaLogsInWithItsCertificate() async throws {
        let files = try await TestCertificates.files()
        for (users, expected) in [([Self.certificateUser], "OK external"), (["someone-else"], "REFUSED")] {
            var configuration = BrokerConfiguration(
                port: 0, users: users.map { BrokerUser(name: $0, password: UUID().uuidString) },
                permissions: users.map { BrokerPermission(user: $0, vhost: "/") })
            configuration.tls = BrokerTLSConfiguration(
                port: 0, certificateChainFile: files.serverCertificate, privateKeyFile: files.serverKey, caFile: files.ca, verifyPeer: true)
            let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
            try await server.start()
            let tlsPort = try #require(server.tlsPort)
            let output = try await Self.runPython(Self.pikaExternalScript, arguments: ["\(tlsPort)", files.ca, files.clientCertificate, files.clientKey])
            try await server.shutdown()
            #expect(output.hasPrefix(expected), "\(output)")
            if expected == "REFUSED" { #expect(output.contains("403"), "\(output)") }
        }
    }

    static let pikaExternalScript = """
        import ssl, sys, time, pika
        port, ca, cert, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(cert, key)
        parameters = pika.ConnectionParameters(
            host="127.0.0.1", port=int(port), virtual_host="/", credentials=pika.credentials.ExternalCredentials(),
            ssl_options=pika.SSLOptions(context, "localhost"), connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5)
        try:
            connection = pika.BlockingConnection(parameters)
        except Exception as error:
            print("REFUSED", repr(error))
            sys.exit(0)
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish("", queue, b"external")
        for _ in range(100):
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if body is not None:
                break
            time.sleep(0.02)
        connection.close()
        print("OK", body.decode() if body else None)
        """

    /// Runs `python3 -c script arguments...` on a Dispatch thread (bounded: 30 s), stdout and stderr together.
    static func runPython(_ script: String, arguments: [String]) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["python3", "-c", script] + arguments
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = pipe
                do { try process.run() } catch {
                    continuation.resume(throwing: error)
                    return
                }
                let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: killer)
                let output = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                killer.cancel()
                continuation.resume(returning: String(decoding: output, as: UTF8.self))
            }
        }
    }

    @Test func badCertificateFilesFailTheStartWithTheirPath() async throws {
        let files = try await TestCertificates.files()
        var configuration = BrokerConfiguration(port: 0)
        configuration.tls = BrokerTLSConfiguration(port: 0, certificateChainFile: "/no/such/cert.pem", privateKeyFile: files.serverKey)
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        do {
            try await server.start()
            Issue.record("started with a missing certificate")
        } catch {
            #expect("\(error)".contains("/no/such/cert.pem"))
        }
        try await server.shutdown()

        // A key that does not belong to the certificate.
        configuration.tls = BrokerTLSConfiguration(port: 0, certificateChainFile: files.serverCertificate, privateKeyFile: files.clientKey)
        let mismatched = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        await #expect(throws: BrokerConfigurationError.self) { try await mismatched.start() }
        try await mismatched.shutdown()
    }
}
