import EC2
import Foundation
import ProcessSupport
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `provider: ec2` end to end against moto's EC2 emulator, which boots nothing: the test
/// plays the cloud (scripts/moto-cloud.py) and boots each instance moto reports as a test
/// host at the instance's private address, running exactly the user data read back from the
/// API. The webapp then configures across those hosts.
@Suite("provider ec2 on moto", .serialized)
struct EC2LaunchCLITests {
    static let net = "cec"
    static let subnet = "10.231.40"

    @Test("the webapp on EC2 (moto): a launch SIGKILLed after some RunInstances is finished by fwd with no instance launched twice; agents downloaded from agent_url and from the coordinator; terminate terminates every instance")
    func webappOnEC2WithFwdAndTerminate() async throws {
        #expect(MotoServer.isAvailable, "moto is not installed (pip install 'moto[server]'; scripts/test.sh does)")
        let moto = try await MotoServer.start()
        defer { Task { await moto.stop() } }
        // The hosts come and go with the instances; the testnet holds only the bridge.
        var net = try await TestNet.up(hosts: 1, name: Self.net, subnet: Self.subnet)
        net = try await net.remove("\(Self.net)-h1")
        defer { try? net.down() }
        let state = SSHLaunchCLITests.scratch("ec2")
        let environment = ProcessInfo.processInfo.environment.merging(
            ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_EC2": moto.url.absoluteString],
            uniquingKeysWith: { _, new in new })

        // A subnet in the testnet's /24, so the private addresses are addresses of the testnet.
        let client = EC2Client(configuration: EC2Configuration(
            region: "us-east-1", credentials: AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing"), endpoint: moto.url))
        let vpc = try await client.createVpc(cidrBlock: "10.231.0.0/16")
        let subnet = try await client.createSubnet(vpcID: vpc.id, cidrBlock: "\(Self.subnet).0/24")

        // The agent binary, served on the bridge's address (the deployable's agent_url).
        let files = state + "/files"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ConductorBinary.path, toPath: files + "/conductor")
        let port = 18_900 + Int.random(in: 0..<90)
        let server = try SSHLaunchCLITests.backgroundCommand(
            "/usr/bin/env", ["python3", "-m", "http.server", String(port), "--bind", "\(Self.subnet).1", "--directory", files], log: state + "/http.log")
        // SIGKILL: the test runner's children may inherit a blocked SIGTERM.
        defer { kill(server.processIdentifier, SIGKILL) }
        let cloud = try SSHLaunchCLITests.backgroundCommand(
            "/usr/bin/env", ["python3", Self.script("moto-cloud.py"), "--endpoint", moto.url.absoluteString, "--net", Self.net, "--seconds", "500"],
            log: state + "/cloud.log")
        defer { kill(cloud.processIdentifier, SIGKILL) }

        let deployable = try Self.deployable(
            in: state, subnet: subnet.id, endpoint: moto.url.absoluteString, agentURL: "http://\(Self.subnet).1:\(port)/conductor")

        // Killed once at least two instances exist: some members asked for, maybe not all.
        let launch = try SSHLaunchCLITests.background(
            ["launch", deployable, "--env", "t", "--state-dir", state, "--bus-listen", "0.0.0.0", "--http", "0.0.0.0:\(port + 1)", "--insecure", "--wait-budget", "120"],
            log: state + "/launch.log",
            environment: environment)
        let someRun = try await SSHLaunchCLITests.eventually(seconds: 120) {
            SSHLaunchCLITests.read(state + "/cloud.log").components(separatedBy: "booted i-").count - 1 >= 2
        }
        kill(launch.processIdentifier, SIGKILL)
        launch.waitUntilExit()
        #expect(someRun, "no instance booted: \(SSHLaunchCLITests.read(state + "/launch.log")) \(SSHLaunchCLITests.read(state + "/cloud.log"))")

        let fwd = try SSHLaunchCLITests.background(
            ["fwd", "webapp-ec2", "--env", "t", "--state-dir", state, "--bus-listen", "0.0.0.0", "--http", "0.0.0.0:\(port + 1)", "--insecure", "--wait-budget", "120"],
            log: state + "/fwd.log",
            environment: environment)
        defer { if fwd.isRunning { kill(fwd.processIdentifier, SIGKILL) } }
        let done = try await SSHLaunchCLITests.eventually(seconds: 300) {
            SSHLaunchCLITests.read(state + "/fwd.log").contains("serving; Ctrl-C") || !fwd.isRunning
        }
        let log = SSHLaunchCLITests.read(state + "/fwd.log")
        #expect(done && log.contains("done: every member configured"), "fwd: \(log)\ncloud: \(SSHLaunchCLITests.read(state + "/cloud.log"))")

        // One instance per member, tagged, in the subnet; the balancer answers through both web servers.
        let live = try await client.describeInstances(filters: [.tag("conductor:deployment", "webapp-ec2@t"), .instanceState(.pending, .running)])
        #expect(live.count == 4, "instances: \(live.map { "\($0.id) \($0.tags["conductor:member"] ?? "?")" })")
        #expect(Set(live.compactMap { $0.tags["conductor:member"] }) == ["db", "web[0]", "web[1]", "lb"])
        #expect(live.allSatisfy { $0.tags["team"] == "conductor-tests" && $0.subnetID == subnet.id })
        // The balancer's agent came from the coordinator (the only URL its user data names,
        // with its own token), the others' from agent_url.
        for instance in live {
            let userData = try await client.userData(instanceID: instance.id) ?? ""
            if instance.tags["conductor:member"] == "lb" {
                #expect(userData.contains(":\(port + 1)/agent/v1/conductor") && userData.contains("Authorization: Bearer "))
            } else {
                #expect(userData.contains("http://\(Self.subnet).1:\(port)/conductor") && !userData.contains("Authorization"))
            }
        }
        if let lb = live.first(where: { $0.tags["conductor:member"] == "lb" })?.privateIP {
            let answer = try await SSHLaunchCLITests.get("http://\(lb):18000/")
            #expect(answer.hasSuffix("db ok"), "lb answered '\(answer)'")
        }

        let terminate = try await CLI.run(["terminate", "webapp-ec2", "--env", "t", "--state-dir", state], timeout: 120, environment: environment)
        #expect(terminate.status == 0, "\(terminate.stderr)")
        let left = try await client.describeInstances(filters: [.tag("conductor:deployment", "webapp-ec2@t"), .instanceState(.pending, .running)])
        #expect(left.isEmpty, "instances still running after terminate: \(left.map(\.id))")
        kill(fwd.processIdentifier, SIGINT)
        _ = try await SSHLaunchCLITests.eventually(seconds: 60) { !fwd.isRunning }
        await moto.stop()
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func script(_ name: String) -> String { Self.root + "/scripts/" + name }

    /// examples/webapp-ec2, with an environment `t` that sets this test's subnet, endpoint and agent URL.
    static func deployable(in state: String, subnet: String, endpoint: String, agentURL: String) throws -> String {
        let examples = Self.root + "/examples"
        let copy = state + "/examples"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for name in ["webapp", "webapp-ec2"] { try FileManager.default.copyItem(atPath: examples + "/" + name, toPath: copy + "/" + name) }
        // The balancer's instance downloads the agent from the coordinator's --http endpoint
        // (with a token of its own), the others from agent_url.
        let environment = """
            providers:
              cloud:
                subnet: \(subnet)
                endpoint: \(endpoint)
                agent_url: \(agentURL)
                bus_address: \(Self.subnet).1
                tags: {team: conductor-tests}
              coordinated:
                kind: ec2
                image: ami-0123456789abcdef0
                region: us-east-1
                subnet: \(subnet)
                endpoint: \(endpoint)
                bus_address: \(Self.subnet).1
                tags: {team: conductor-tests}
            instances:
              lb: {provider: coordinated}

            """
        try FileManager.default.createDirectory(atPath: copy + "/webapp-ec2/environments", withIntermediateDirectories: true)
        try environment.write(toFile: copy + "/webapp-ec2/environments/t.yml", atomically: true, encoding: .utf8)
        return copy + "/webapp-ec2/deployable.yml"
    }
}
