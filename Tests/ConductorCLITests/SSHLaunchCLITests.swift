import Foundation
import ProcessSupport
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `provider: ssh` end to end: the `conductor` binary launches onto test hosts (network
/// namespaces with their own sshd, scripts/testnet.sh), copies itself there, starts agents
/// and configures them; the hosts really connect to each other's addresses.
@Suite("provider ssh on test hosts", .serialized)
struct SSHLaunchCLITests {
    static let net = "cst"
    static let subnet = "10.231.30"

    // MARK: - Launch, warm launch, terminate

    @Test("the webapp across four SSH hosts over a TLS bus: configured, reachable, one agent per host verifying the bus's certificate; terminate leaves none; a second launch reuses the binary")
    func webappAcrossFourHosts() async throws {
        let net = try await TestNet.up(hosts: 4, name: Self.net, subnet: Self.subnet)
        defer { try? net.down() }
        let state = Self.scratch("ssh-webapp")
        let deployable = try Self.exampleCopy(net: net, hosts: net.hosts)
        defer { Self.stopCoordinator(state: state) }
        // Self-signed for the address the hosts reach this machine at (the bridge's), so the
        // certificate is also the CA the agents verify it with.
        let certificate = try await TestCertificates.selfSigned("bus", addresses: ["\(Self.subnet).1"], in: state)
        let tls = ["--bus-tls-cert", certificate.certificate, "--bus-tls-key", certificate.key]

        let launch = try await CLI.run(Self.launchArguments(deployable, state: state, security: tls) + ["--detach", "--json"], timeout: 300)
        #expect(launch.status == 0, "launch failed: \(launch.stderr)")
        let result = try Self.result(launch.stdout)
        #expect(result.configured)
        #expect(result.members.map(\.member) == ["db", "web[0]", "web[1]", "lb"])
        #expect(result.members.map(\.address) == net.hosts.map(\.address))

        // The balancer on h4 answers from the root namespace, through both web servers,
        // which checked the database's password over the network.
        let lb = net.hosts[3].address
        let answers = try await [Self.get("http://\(lb):18000/"), Self.get("http://\(lb):18000/")]
        #expect(Set(answers.compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) }) == [net.hosts[1].address, net.hosts[2].address], "\(answers)")
        #expect(answers.allSatisfy { $0.hasSuffix("db ok") })

        for host in net.hosts {
            #expect(try await Self.agents(on: host, net: net).count == 1, "agents on \(host.name)")
            let agents = Self.optConductor(host, net: net) + "/agents"
            let folders = try FileManager.default.contentsOfDirectory(atPath: agents)
            #expect(folders.count == 1)
            guard let folder = folders.first else { continue }
            #expect(Self.mode(agents + "/" + folder) == 0o700)
            #expect(Self.mode(agents + "/" + folder + "/agent.env") == 0o600)
            let env = try String(contentsOfFile: agents + "/" + folder + "/agent.env", encoding: .utf8)
            #expect(env.contains("CONDUCTOR_BROKER_URL='amqps://agent.\(folder):"), "the agent logs in with its own login, over TLS")
            #expect(env.contains("@\(Self.subnet).1:"), "the bus at the address the host routes to")
            // The CA beside it, public; the URL points the agent at it (the path as the host sees it).
            #expect(env.contains("cacertfile=/opt/conductor/agents/\(folder)/bus-ca.pem"), "\(env)")
            #expect(Self.mode(agents + "/" + folder + "/bus-ca.pem") == 0o644)
            #expect(Self.read(agents + "/" + folder + "/bus-ca.pem").trimmingCharacters(in: .whitespacesAndNewlines)
                == Self.read(certificate.certificate).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Other machines reach the bus over TLS only: its plain listener is on loopback.
        let coordinatorLog = Self.read(state + "/coordinator.log")
        #expect(coordinatorLog.contains("embedded broker on 127.0.0.1:") && coordinatorLog.contains(", amqps on 0.0.0.0:"), "\(coordinatorLog)")
        #expect(coordinatorLog.contains("the agents' logins also from other machines, over TLS"), "\(coordinatorLog)")

        let terminate = try await CLI.run(["terminate", "webapp-ssh", "--env", "t", "--state-dir", state], timeout: 120)
        #expect(terminate.status == 0, "\(terminate.stderr)")
        let binaryInode = Self.inode(Self.optConductor(net.hosts[0], net: net) + "/bin/conductor")
        #expect(binaryInode != nil, "the binary stays on the host")
        for host in net.hosts {
            #expect(try await Self.agents(on: host, net: net).isEmpty, "an agent left on \(host.name)")
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: Self.optConductor(host, net: net) + "/agents")) ?? []
            #expect(folders.isEmpty, "agent folders left on \(host.name): \(folders)")
        }

        // Warm: the hosts have this binary, so nothing is copied again.
        let again = try await CLI.run(Self.launchArguments(deployable, state: state, security: tls) + ["--detach", "--json"], timeout: 300)
        #expect(again.status == 0, "second launch failed: \(again.stderr)")
        #expect(try Self.result(again.stdout).configured)
        #expect(Self.inode(Self.optConductor(net.hosts[0], net: net) + "/bin/conductor") == binaryInode)
        _ = try await CLI.run(["terminate", "webapp-ssh", "--env", "t", "--state-dir", state], timeout: 120)
    }

    // MARK: - fwd after a crash

    @Test("a launch SIGKILLed while it bootstraps the hosts is finished by fwd, with one agent on each host")
    func fwdAfterSIGKILLMidBootstrap() async throws {
        let net = try await TestNet.up(hosts: 4, name: Self.net, subnet: Self.subnet)
        defer { try? net.down() }
        let state = Self.scratch("ssh-fwd")
        let deployable = try Self.exampleCopy(net: net, hosts: net.hosts)

        // Cold hosts: the copy of the binary is under way when the launch dies.
        let launch = try Self.background(Self.launchArguments(deployable, state: state), log: state + "/launch.log")
        let bootstrapping = try await Self.eventually(seconds: 120) {
            net.hosts.contains { host in
                let root = Self.optConductor(host, net: net)
                let uploads = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/bin")) ?? []).contains { $0.hasPrefix(".conductor.upload") }
                let agents = !((try? FileManager.default.contentsOfDirectory(atPath: root + "/agents")) ?? []).isEmpty
                return uploads || agents
            }
        }
        #expect(bootstrapping, "the launch never began to bootstrap a host: \(Self.read(state + "/launch.log"))")
        kill(launch.processIdentifier, SIGKILL)
        launch.waitUntilExit()

        // No bus flags: fwd brings back the recorded bus, --bus-listen 0.0.0.0 and --insecure included.
        let fwd = try Self.background(["fwd", "webapp-ssh", "--env", "t", "--state-dir", state], log: state + "/fwd.log")
        defer { if fwd.isRunning { kill(fwd.processIdentifier, SIGKILL) } }
        let done = try await Self.eventually(seconds: 240) {
            let log = Self.read(state + "/fwd.log")
            return log.contains("serving; Ctrl-C") || !fwd.isRunning
        }
        let log = Self.read(state + "/fwd.log")
        #expect(done && log.contains("done: every member configured"), "fwd did not configure the deployment: \(log)")
        for host in net.hosts {
            #expect(try await Self.agents(on: host, net: net).count == 1, "agents on \(host.name) after fwd: \(log)")
        }
        kill(fwd.processIdentifier, SIGINT)
        _ = try await Self.eventually(seconds: 60) { !fwd.isRunning }
        for host in net.hosts {
            #expect(try await Self.agents(on: host, net: net).isEmpty, "an agent left on \(host.name) after fwd stopped")
        }
    }

    // MARK: - Failures, each named

    @Test("unreachable host, refused key, changed and unknown host keys, no disk space, missing sudo: each a failure naming the host and the cause; accept-new records a first key and a puppet manifest runs there")
    func eachFailureIsNamed() async throws {
        let net = try await TestNet.up(hosts: 3, name: Self.net, subnet: Self.subnet, smallDisk: ["\(Self.net)-h2"])
        defer { try? net.down() }
        let state = Self.scratch("ssh-failures")
        let (h1, h2, h3) = (net.hosts[0], net.hosts[1], net.hosts[2])

        let otherKey = state + "/other_ed25519"
        let keygen = try await ProcessRunner.run(ProcessRequest(.executable("ssh-keygen", arguments: ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]), timeout: .seconds(30)))
        #expect(keygen.succeeded)
        let known = try String(contentsOfFile: net.knownHostsPath, encoding: .utf8)
        let otherPublic = try String(contentsOfFile: otherKey + ".pub", encoding: .utf8).split(separator: " ").dropFirst().first.map(String.init) ?? ""
        let changed = known.split(separator: "\n").map { line in
            line.hasPrefix(h1.address + " ") ? "\(h1.address) ssh-ed25519 \(otherPublic)" : String(line)
        }.joined(separator: "\n") + "\n"
        try changed.write(toFile: state + "/known_changed", atomically: true, encoding: .utf8)
        try "".write(toFile: state + "/known_empty", atomically: true, encoding: .utf8)
        try "".write(toFile: state + "/known_first", atomically: true, encoding: .utf8)

        func pool(_ name: String, _ host: String, key: String = net.keyPath, known: String = net.knownHostsPath, extra: String = "") -> String {
            "  \(name):\n    kind: ssh\n    hosts: [\(host)]\n    identity: \(key)\n    known_hosts: \(known)\n    connect_timeout: 3\n\(extra)"
        }
        let providers = [
            pool("unreachable", "root@\(Self.subnet).99"), pool("refused", "root@\(h1.address)", key: otherKey),
            pool("changed", "root@\(h1.address)", known: state + "/known_changed"), pool("unknown", "root@\(h1.address)", known: state + "/known_empty"),
            pool("nodisk", "root@\(h2.address)"), pool("nosudo", "root@\(h1.address)", extra: "    sudo: true\n"),
            pool("firstcontact", "root@\(h3.address)", known: state + "/known_first", extra: "    host_keys: accept-new\n"),
        ]
        let names = ["unreachable", "refused", "changed", "unknown", "nodisk", "nosudo", "firstcontact"]
        // The host that works runs a real puppet manifest that writes a file from a parameter.
        let puppet = """
              firstcontact:
                provider: firstcontact
                services:
                  motd:
                    kind: puppet
                    manifest: |
                      file { '/opt/conductor/motd': content => "greeting ${facts['greeting']} from ${facts['hostname']}\\n" }
                    parameters: {greeting: hello}

            """
        let yaml = "name: failures\nproviders:\n" + providers.joined() + "instances:\n"
            + names.filter { $0 != "firstcontact" }.map { "  \($0): {provider: \($0), services: {s: {script: \"echo ok\"}}}\n" }.joined() + puppet
        let file = state + "/failures.yml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)

        let run = try await CLI.run(
            ["launch", file, "--state-dir", state, "--bus-listen", "0.0.0.0", "--insecure", "--wait-budget", "20", "--exit-when-configured", "--json"],
            timeout: 240)
        #expect(run.status != 0)
        let result = try Self.result(run.stdout)
        func reason(_ member: String) -> String { result.members.first { $0.member == member }?.reason ?? "(no reason: \(run.stdout) \(run.stderr))" }
        #expect(reason("unreachable").contains("root@\(Self.subnet).99 (install): cannot reach it"))
        #expect(reason("refused").contains("root@\(h1.address) (install): the host refused the key \(otherKey) for user root"))
        #expect(reason("changed").contains("root@\(h1.address) (install): the host key has changed since it was recorded in \(state)/known_changed"))
        #expect(reason("unknown").contains("root@\(h1.address) (install): the host's key is not in \(state)/known_empty and host_keys is strict"))
        #expect(reason("nodisk").contains("root@\(h2.address) (copy): no disk space: /opt/conductor has"))
        let sudoInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo")
        if sudoInstalled {
            #expect(result.members.first { $0.member == "nosudo" }?.state == "configured", "root's sudo -n needs no password")
        } else {
            #expect(reason("nosudo").contains("root@\(h1.address) (install): sudo is not installed, and the pool says sudo: true"))
        }
        #expect(result.members.first { $0.member == "firstcontact" }?.state == "configured", "accept-new: \(reason("firstcontact"))")
        #expect(Self.read(Self.optConductor(h3, net: net) + "/motd") == "greeting hello from \(h3.name)\n", "puppet apply on the test host")
        // Recorded (Debian's ssh hashes the host names it writes: HashKnownHosts).
        #expect(try String(contentsOfFile: state + "/known_first", encoding: .utf8).contains("ssh-ed25519"), "accept-new records the key")
        #expect(result.members.filter { $0.state == "failed" }.count == (sudoInstalled ? 5 : 6))
    }

    // MARK: - Helpers

    /// `security`: the bus's TLS flags, or `--insecure` (clear text on the test network).
    static func launchArguments(_ deployable: String, state: String, security: [String] = ["--insecure"]) -> [String] {
        ["launch", deployable, "--env", "t", "--state-dir", state, "--bus-listen", "0.0.0.0", "--wait-budget", "60"] + security
    }

    static func scratch(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "conductor-\(name)-" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// examples/webapp-ssh and the webapp scripts it uses, copied, with an environment `t`
    /// that points its pool at the test hosts.
    static func exampleCopy(net: TestNet, hosts: [TestHost]) throws -> String {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples").path
        let copy = Self.scratch("ssh-example")
        for name in ["webapp", "webapp-ssh"] {
            try FileManager.default.copyItem(atPath: examples + "/" + name, toPath: copy + "/" + name)
        }
        try FileManager.default.createDirectory(atPath: copy + "/webapp-ssh/environments", withIntermediateDirectories: true)
        let environment = """
            providers:
              lab:
                hosts: [\(hosts.map { "root@\($0.address)" }.joined(separator: ", "))]
                identity: \(net.keyPath)
                known_hosts: \(net.knownHostsPath)

            """
        try environment.write(toFile: copy + "/webapp-ssh/environments/t.yml", atomically: true, encoding: .utf8)
        return copy + "/webapp-ssh/deployable.yml"
    }

    /// The host's /opt/conductor, seen from here (its sshd binds it from the testnet's folder).
    static func optConductor(_ host: TestHost, net: TestNet) -> String {
        "\(net.stateDirectory)/\(host.name)/opt-conductor"
    }

    /// `conductor agent` processes in the host's network namespace.
    static func agents(on host: TestHost, net: TestNet) async throws -> [Int32] {
        let listed = try await ProcessRunner.run(ProcessRequest(.executable("ip", arguments: ["netns", "pids", host.name]), timeout: .seconds(30)))
        return listed.stdout.text.split(separator: "\n").compactMap { Int32($0) }.filter { ChildProcess.firstArgument(of: $0) == "agent" }
    }

    static func mode(_ path: String) -> Int? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue
    }

    static func inode(_ path: String) -> UInt64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? NSNumber)?.uint64Value
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    static func get(_ url: String) async throws -> String {
        let result = try await ProcessRunner.run(ProcessRequest(
            .executable("python3", arguments: ["-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())", url]),
            timeout: .seconds(20)))
        return result.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `conductor …` in the background, its stdout and stderr appended to `log`.
    static func background(_ arguments: [String], log: String, environment: [String: String]? = nil) throws -> Process {
        try Self.backgroundCommand(ConductorBinary.path, arguments, log: log, environment: environment)
    }

    static func backgroundCommand(_ executable: String, _ arguments: [String], log: String, environment: [String: String]? = nil) throws -> Process {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = output
        process.standardError = output
        try process.runSerialized()
        return process
    }

    static func eventually(seconds: Double, _ condition: @escaping @Sendable () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try condition()
    }

    /// Stops the background `conductor serve` a `--detach` launch started.
    static func stopCoordinator(state: String) {
        struct Record: Decodable { var pid: Int32 }
        guard let data = FileManager.default.contents(atPath: state + "/coordinator.json"),
            let record = try? JSONDecoder().decode(Record.self, from: data)
        else { return }
        kill(record.pid, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, kill(record.pid, 0) == 0 { usleep(100_000) }
        kill(record.pid, SIGKILL)
    }

    struct LaunchJSON: Decodable {
        struct Member: Decodable {
            var member: String
            var address: String?
            var state: String
            var reason: String?
        }
        var configured: Bool
        var members: [Member]
    }

    static func result(_ json: String) throws -> LaunchJSON {
        guard let start = json.firstIndex(of: "{") else { throw ResultMissing(output: json) }
        return try JSONDecoder().decode(LaunchJSON.self, from: Data(json[start...].utf8))
    }

    struct ResultMissing: Error { var output: String }
}
