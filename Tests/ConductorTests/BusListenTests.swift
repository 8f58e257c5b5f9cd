import AMQPClient
@testable import Conductor
import Foundation
import Mesh
import Testing
import TestSupport

/// Listening beyond loopback: which addresses count, the embedded launch bus with TLS (its
/// plain listener kept on loopback, agents elsewhere verifying its certificate, the same
/// listeners brought back from its record), the clear-text refusal, and the bus URL and CA
/// file a remote instance gets.
@Suite(.timeLimit(.minutes(1)))
struct BusListenTests {
    @Test func loopbackIsThisMachineOnlyAndTheWildcardIsBeyondIt() {
        for host in ["127.0.0.1", "127.61.9.2", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"] {
            #expect(ListenAddress.isLoopback(host), "\(host)")
        }
        for host in ["0.0.0.0", "::", "[::]", "10.231.30.1", "192.168.1.7", "fe80::1", "example.com", "128.0.0.1"] {
            #expect(!ListenAddress.isLoopback(host), "\(host)")
        }
        #expect(ListenAddress.isWildcard("0.0.0.0") && ListenAddress.isWildcard("::") && ListenAddress.isWildcard("[::]"))
        #expect(!ListenAddress.isWildcard("10.0.0.1"))
        #expect(InstanceURL.isLocalOnly("0.0.0.0") && InstanceURL.isLocalOnly("127.0.0.1") && !InstanceURL.isLocalOnly("10.0.0.1"))
        #expect(
            LaunchBus.clearTextRefusal(listen: "0.0.0.0")
                == "--bus-listen 0.0.0.0 would carry agents' passwords and jobs in clear text to other machines; give --bus-tls-cert and --bus-tls-key, or --insecure to accept that")
    }

    @Test func aRemoteInstanceGetsAmqpsToTheTLSListenerWithItsCAFile() throws {
        let url = "amqp://agent:secret@127.0.0.1:5999/%2F"
        let home = "/opt/conductor/agents/0b1c"
        let plain = try InstanceURL.remoteBus(url, reach: .reachable, address: "10.231.30.1", home: home, provider: "lab")
        #expect(plain.url == "amqp://agent:secret@10.231.30.1:5999/%2F")
        #expect(plain.caCertificate == nil)

        let ca = NSTemporaryDirectory() + "bus-ca-\(UUID().uuidString).pem"
        try "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".write(toFile: ca, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: ca) }
        let tls = try InstanceURL.remoteBus(
            url, reach: .reachableOverTLS(BusTLSEndpoint(port: 6001, caFile: ca)), address: "10.231.30.1", home: home, provider: "lab")
        #expect(tls.caCertificate?.contains("BEGIN CERTIFICATE") == true)
        let parsed = try AMQPConnectionConfiguration(url: tls.url)
        #expect(tls.url.hasPrefix("amqps://agent:secret@10.231.30.1:6001/"), "\(tls.url)")
        #expect(parsed.host == "10.231.30.1" && parsed.port == 6001 && parsed.virtualHost == "/" && parsed.password == "secret")
        #expect(parsed.tls?.caFile == home + "/bus-ca.pem")
        #expect(parsed.tls?.verifyPeer == true && parsed.tls?.verifyHostname == true)

        // The certificate's names are checked before anything goes to the instance.
        let named = BusTLSEndpoint(port: 6001, caFile: ca, names: ["10.231.30.1", "bus.example.com", "*.lab.example.com"])
        for address in ["10.231.30.1", "bus.example.com", "BUS.example.com", "h1.lab.example.com"] {
            #expect(throws: Never.self, "\(address)") {
                _ = try InstanceURL.remoteBus(url, reach: .reachableOverTLS(named), address: address, home: home, provider: "lab")
            }
        }
        for address in ["10.231.30.2", "other.example.com", "a.b.lab.example.com", "lab.example.com"] {
            let refused = #expect(throws: ProviderError.self, "\(address)") {
                _ = try InstanceURL.remoteBus(url, reach: .reachableOverTLS(named), address: address, home: home, provider: "lab")
            }
            #expect(
                refused?.description
                    == "provider lab: the bus's certificate is for 10.231.30.1, bus.example.com, *.lab.example.com, not for \(address), where the instance reaches this machine, so its agent would refuse the bus; give --bus-tls-cert a certificate that names \(address), or set the provider's bus_address to a name the certificate carries")
        }
        #expect(InstanceURL.certificateNames(["::1"], cover: "[0:0:0:0:0:0:0:1]"))

        // A publicly signed certificate: no CA file, the instance's trust store.
        let system = try InstanceURL.remoteBus(
            url, reach: .reachableOverTLS(BusTLSEndpoint(port: 6001, caFile: nil)), address: "bus.example.com", home: home, provider: "lab")
        #expect(system.url == "amqps://agent:secret@bus.example.com:6001/%2F" && system.caCertificate == nil)

        let unreadable = #expect(throws: ProviderError.self) {
            _ = try InstanceURL.remoteBus(
                url, reach: .reachableOverTLS(BusTLSEndpoint(port: 6001, caFile: "/nonexistent/ca.pem")), address: "10.0.0.1", home: home, provider: "lab")
        }
        #expect(unreadable?.description.contains("cannot read the bus's CA certificate /nonexistent/ca.pem") == true)
    }

    @Test func theInstallStepWritesTheCABesideTheAgentsConfiguration() throws {
        let request = InstanceStartRequest(
            deployment: "webapp", environment: "t", member: "db", ordinal: 0, instanceID: "0b1c", brokerURL: "amqps://agent:x@10.0.0.1:6001/%2F",
            trustedUser: "conductor", workDirectory: "/tmp/w")
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let ssh = SSHScripts.ensure(
            installDirectory: "/opt/conductor", instanceID: "0b1c", sha256: "00", environment: [("CONDUCTOR_BROKER_URL", request.brokerURL)],
            busCACertificate: pem, agentArguments: ["agent"], description: "db")
        #expect(ssh.contains("cat > \"$home/bus-ca.pem.new\" <<'CONDUCTOR_END_OF_FILE'\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nCONDUCTOR_END_OF_FILE\n"))
        #expect(ssh.contains("chmod 644 \"$home/bus-ca.pem.new\" && mv -f \"$home/bus-ca.pem.new\" \"$home/bus-ca.pem\""))
        let written = try #require(ssh.range(of: "bus-ca.pem.new\" <<")).lowerBound
        #expect(written > ssh.range(of: "chmod 700 \"$dir/agents\" \"$home\"")!.lowerBound, "the CA goes into the folder made private first")
        #expect(!SSHScripts.ensure(
            installDirectory: "/opt/conductor", instanceID: "0b1c", sha256: "00", environment: [], agentArguments: ["agent"], description: "db"
        ).contains("bus-ca.pem"))

        let userData = EC2UserData.script(
            request: request, brokerURL: request.brokerURL, busCACertificate: pem, agentURL: "http://10.0.0.1:8080/agent/v1/conductor", token: nil,
            sha256: "00", installDirectory: "/opt/conductor", heartbeatInterval: 1)
        #expect(userData.contains("<<'CONDUCTOR_END_OF_FILE'\n-----BEGIN CERTIFICATE-----\nMIIB\n"))
    }

    @Test func beyondLoopbackWithoutTLSOrInsecureIsRefusedBeforeAnythingBinds() async throws {
        let state = try Self.scratch()
        let recorded = state + "/buses/old@default.json"
        let refused = await #expect(throws: HostError.self) { _ = try await LaunchBus.start(broker: nil, record: recorded, listen: "0.0.0.0") }
        #expect(refused?.message == LaunchBus.clearTextRefusal(listen: "0.0.0.0"))
        #expect(!FileManager.default.fileExists(atPath: recorded), "nothing was recorded")

        // A bus recorded before --bus-listen needed TLS: fwd is refused, naming the record.
        let old = EmbeddedBusRecord(port: try Self.freePort(), conductorPassword: "c", agentPassword: "a", recipePassword: nil, listen: "0.0.0.0")
        try old.write(recorded)
        let fromRecord = await #expect(throws: HostError.self) { _ = try await LaunchBus.start(broker: nil, record: recorded) }
        #expect(fromRecord?.message == LaunchBus.clearTextRefusal(listen: "0.0.0.0") + " (the address is recorded in \(recorded))")

        // --insecure accepts it, and is recorded with it.
        let bus = try await LaunchBus.start(broker: nil, record: recorded, insecure: true)
        #expect(bus.reach == .reachable && bus.restored)
        #expect(bus.broker?.configuration.host == "0.0.0.0")
        await bus.stop()
        #expect(EmbeddedBusRecord.read(recorded)?.insecure == nil, "a restored record is not rewritten")
        let fresh = state + "/buses/fresh@default.json"
        let insecure = try await LaunchBus.start(broker: nil, record: fresh, listen: "0.0.0.0", insecure: true)
        await insecure.stop()
        #expect(EmbeddedBusRecord.read(fresh)?.insecure == true)
        let again = try await LaunchBus.start(broker: nil, record: fresh)
        #expect(again.reach == .reachable && again.restored)
        await again.stop()

        // One address in clear text: the broker's only plain listener would be there, out of
        // the coordinator's reach on 127.0.0.1 (it hung connecting before this was refused).
        let specific = await #expect(throws: HostError.self) { _ = try await LaunchBus.start(broker: nil, listen: "192.0.2.77", insecure: true) }
        #expect(specific?.message.hasPrefix("--bus-listen 192.0.2.77 in clear text would put the broker's only plain listener on 192.0.2.77") == true)
    }

    @Test func withTLSOtherMachinesGetAmqpsOnlyAndFwdBringsTheSameListenersBack() async throws {
        let state = try Self.scratch()
        let files = try await TestCertificates.selfSigned("bus", addresses: ["127.0.0.1"], in: state)
        let record = state + "/buses/webapp@default.json"
        let tls = LaunchBusTLS(certificate: files.certificate, key: files.key)
        let bus = try await LaunchBus.start(broker: nil, record: record, listen: "0.0.0.0", tls: tls)
        guard case .reachableOverTLS(let endpoint) = bus.reach else {
            Issue.record("reach \(bus.reach)")
            await bus.stop()
            return
        }
        // Self-signed: the certificate is the CA the agents verify with; its names are known.
        #expect(endpoint.caFile == files.certificate)
        #expect(endpoint.names == ["127.0.0.1"])
        #expect(bus.broker?.configuration.host == "127.0.0.1", "the plain listener stays on loopback")
        #expect(bus.broker?.configuration.tls?.host == "0.0.0.0")
        #expect(bus.agentURL == "amqp://127.0.0.1:\(bus.console.port)/%2F")
        // An agent's own login, as a launch makes it.
        let login = AgentIdentity(agent: try AgentName(instance: "tls-check"), password: "pw-tls-check-0123456789")
        try await #require(bus.accounts).create(login)
        let agentURL = login.url(from: bus.agentURL)

        // An agent elsewhere: amqps at an address the certificate names, verified with its CA.
        let home = state + "/agent"
        let remote = try InstanceURL.remoteBus(agentURL, reach: bus.reach, address: "127.0.0.1", home: home, provider: "test")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try #require(remote.caCertificate).write(toFile: InstanceURL.busCAPath(home: home), atomically: true, encoding: .utf8)
        let connection = try await AMQPConnection.connect(url: remote.url)
        try await connection.close()
        // An address the certificate does not name (the listener takes all of 127/8) is
        // refused by the agent's own check too, when the names were not known beforehand.
        var unnamed = endpoint
        unnamed.names = []
        let misnamed = try InstanceURL.remoteBus(agentURL, reach: .reachableOverTLS(unnamed), address: "127.0.0.2", home: home, provider: "test")
        await #expect(throws: (any Error).self) { _ = try await AMQPConnection.connect(url: misnamed.url) }

        let plainPort = bus.console.port
        await bus.stop()
        let saved = try #require(EmbeddedBusRecord.read(record))
        #expect(saved.tls?.port == endpoint.port && saved.tls?.certificate == files.certificate && saved.listen == "0.0.0.0")

        // fwd with no bus flags: the same plain port, the same amqps port and certificate.
        let restored = try await LaunchBus.start(broker: nil, record: record)
        #expect(restored.restored && restored.console.port == plainPort)
        #expect(restored.reach == .reachableOverTLS(endpoint))
        try await #require(restored.accounts).create(login)
        let again = try await AMQPConnection.connect(url: remote.url)
        try await again.close()
        await restored.stop()
    }

    @Test func aCertificateTheAgentsCannotVerifyIsRefusedAtTheStart() async throws {
        let certificates = try await TestCertificates.files()
        let state = try Self.scratch()
        // Signed by the test CA, which no system trusts: without --bus-tls-ca agents could not verify it.
        let unverifiable = await #expect(throws: HostError.self) {
            _ = try await LaunchBus.start(
                broker: nil, listen: "0.0.0.0", tls: LaunchBusTLS(certificate: certificates.serverCertificate, key: certificates.serverKey))
        }
        #expect(unverifiable?.message.contains("an agent cannot verify the bus's certificate \(certificates.serverCertificate) with the system's trusted CAs") == true)
        #expect(unverifiable?.message.contains("give --bus-tls-ca") == true)
        let wrongCA = await #expect(throws: HostError.self) {
            _ = try await LaunchBus.start(
                broker: nil, listen: "0.0.0.0",
                tls: LaunchBusTLS(certificate: certificates.serverCertificate, key: certificates.serverKey, ca: certificates.otherCA))
        }
        #expect(wrongCA?.message.contains("with the CA in \(certificates.otherCA)") == true)

        let bus = try await LaunchBus.start(
            broker: nil, record: state + "/buses/x@default.json", listen: "0.0.0.0",
            tls: LaunchBusTLS(certificate: certificates.serverCertificate, key: certificates.serverKey, ca: certificates.ca))
        #expect(bus.reach == .reachableOverTLS(BusTLSEndpoint(port: try #require(bus.broker?.tlsPort), caFile: certificates.ca, names: ["localhost", "127.0.0.1"])))
        await bus.stop()
    }

    static func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "conductor-bus-listen-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A port nothing listens on now (bound and released at once).
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
