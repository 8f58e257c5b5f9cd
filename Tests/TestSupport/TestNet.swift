import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One test host of a `TestNet`: a network namespace with its own address, hostname, sshd
/// and /opt/conductor.
public struct TestHost: Sendable, Equatable {
    public let name: String
    public let address: String
    public let port: Int
    public let user: String
    /// The host's sshd; `TestNet.exec` enters its namespaces.
    public let sshdPID: Int32
}

/// What went wrong bringing up, using or taking down a `TestNet`, in words a test failure
/// can show as is (the script's own message included).
public struct TestNetError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Test hosts with real addresses, made by `scripts/testnet.sh` (Linux, root, Debian's
/// openssh-server): a bridge with A.B.C.1 in this (root) namespace, hosts NAME-h1… at
/// A.B.C.2…, each running its own sshd that lets root in with `keyPath` only. See
/// docs/testing.md, "Test hosts".
///
/// The blocking calls (`up`, `exec`, `ssh`, `down`) have async twins that run them on a
/// Dispatch thread: call those from async tests, so the two threads of Swift's cooperative
/// pool stay free for the suites running beside them.
public struct TestNet: Sendable {
    public let name: String
    public let hosts: [TestHost]
    /// /tmp/conductor-testnet-NAME
    public let stateDirectory: String
    /// The private key root logs in with on every host (no passphrase).
    public var keyPath: String { self.stateDirectory + "/id_ed25519" }
    /// One line per host: `ADDRESS ssh-ed25519 KEY`.
    public var knownHostsPath: String { self.stateDirectory + "/known_hosts" }
    /// `ssh -F sshConfigPath HOST` reaches HOST by name.
    public var sshConfigPath: String { self.stateDirectory + "/ssh_config" }

    /// scripts/testnet.sh of this checkout (found from this file, as TestCertificates does).
    public static var script: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/testnet.sh").path
    }

    /// Why a TestNet cannot be made on this machine (not root, no sshd…), or nil. Tests that
    /// need hosts fail with this rather than skip: the test command installs what they need.
    public static var unavailableReason: String? {
        #if os(Linux)
        if geteuid() != 0 {
            return "test hosts need root (network namespaces, a bridge, sshd): run the tests as root"
        }
        let tools = [
            ("/usr/sbin/sshd", "openssh-server"), ("/usr/bin/ssh", "openssh-client"), ("/usr/bin/ssh-keygen", "openssh-client"),
            ("/usr/sbin/ip", "iproute2"), ("/usr/bin/nsenter", "util-linux"), ("/usr/bin/unshare", "util-linux"),
        ]
        for (path, package) in tools where !FileManager.default.isExecutableFile(atPath: path) {
            // ip lives in /bin on some systems.
            if path == "/usr/sbin/ip", FileManager.default.isExecutableFile(atPath: "/sbin/ip") { continue }
            return "test hosts need \(path): install Debian's \(package) (scripts/test.sh does)"
        }
        return nil
        #else
        return "test hosts need Linux network namespaces"
        #endif
    }

    /// `scripts/testnet.sh up HOSTS --name NAME`: takes down a testnet of that name first,
    /// returns once every host answers `ssh root@ADDRESS hostname` with its own name.
    /// `smallDisk`: hosts (e.g. "ctt-h2") whose /opt/conductor is a 4 MiB tmpfs.
    public static func up(hosts: Int, name: String, subnet: String? = nil, smallDisk: [String] = [], timeout: TimeInterval = 180) throws -> TestNet {
        if let reason = Self.unavailableReason { throw TestNetError(reason) }
        var arguments = ["up", String(hosts), "--name", name]
        if let subnet { arguments += ["--subnet", subnet] }
        for host in smallDisk { arguments += ["--small-disk", host] }
        let result = try Self.run(arguments, timeout: timeout)
        guard result.status == 0 else {
            throw TestNetError("testnet.sh \(arguments.joined(separator: " ")) exited \(result.status): \(result.output)")
        }
        return try Self.read(name: name)
    }

    /// The testnet NAME that is up (from its hosts.json).
    public static func read(name: String) throws -> TestNet {
        let state = "/tmp/conductor-testnet-\(name)"
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: state + "/hosts.json"))
        } catch {
            throw TestNetError("testnet \(name) is not up (no \(state)/hosts.json)")
        }
        struct Entry: Decodable {
            let name: String
            let address: String
            let port: Int
            let user: String
            let sshd_pid: Int32
        }
        let entries = try JSONDecoder().decode([Entry].self, from: data)
        return TestNet(
            name: name,
            hosts: entries.map { TestHost(name: $0.name, address: $0.address, port: $0.port, user: $0.user, sshdPID: $0.sshd_pid) },
            stateDirectory: state
        )
    }

    public func host(_ name: String) -> TestHost? { self.hosts.first { $0.name == name } }

    /// Runs COMMAND inside HOST's network, mount and UTS namespaces (as a process there
    /// would run, without ssh): stdout and stderr together, and the exit status.
    public func exec(_ host: String, _ command: [String], timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        try Self.run(["exec", host, "--"] + command, timeout: timeout)
    }

    /// The ssh command line (without the remote command) that logs in to HOST as its user
    /// with the test key, checking its host key against `knownHostsPath`.
    public func sshArguments(_ host: TestHost) -> [String] {
        [
            "/usr/bin/ssh", "-F", "/dev/null", "-i", self.keyPath, "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=\(self.knownHostsPath)", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR", "-p", String(host.port), "\(host.user)@\(host.address)",
        ]
    }

    /// Runs COMMAND (a shell command line) on HOST over ssh from this namespace.
    public func ssh(_ host: String, _ command: String, timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        guard let target = self.host(host) else { throw TestNetError("no host \(host) in testnet \(self.name)") }
        let arguments = self.sshArguments(target) + [command]
        return try Self.runProcess(arguments[0], Array(arguments.dropFirst()), timeout: timeout)
    }

    /// `scripts/testnet.sh down --name NAME`: stops every process on the hosts, deletes the
    /// namespaces, the bridge and the state folder.
    public func down(timeout: TimeInterval = 120) throws {
        let result = try Self.run(["down", "--name", self.name], timeout: timeout)
        guard result.status == 0 else {
            throw TestNetError("testnet.sh down --name \(self.name) exited \(result.status): \(result.output)")
        }
    }

    /// `scripts/testnet.sh add HOST ADDRESS`: one more host (NAME-hK) at ADDRESS in the
    /// subnet, answering ssh when this returns. The testnet with it.
    public func add(_ host: String, address: String, timeout: TimeInterval = 60) throws -> TestNet {
        let result = try Self.run(["add", host, address], timeout: timeout)
        guard result.status == 0 else {
            throw TestNetError("testnet.sh add \(host) \(address) exited \(result.status): \(result.output)")
        }
        return try Self.read(name: self.name)
    }

    /// `scripts/testnet.sh remove HOST`: stops everything on HOST and deletes it. The testnet
    /// without it.
    public func remove(_ host: String, timeout: TimeInterval = 60) throws -> TestNet {
        let result = try Self.run(["remove", host], timeout: timeout)
        guard result.status == 0 else {
            throw TestNetError("testnet.sh remove \(host) exited \(result.status): \(result.output)")
        }
        return try Self.read(name: self.name)
    }

    // MARK: - Off the cooperative pool

    public static func up(hosts: Int, name: String, subnet: String? = nil, smallDisk: [String] = [], timeout: TimeInterval = 180) async throws -> TestNet {
        try await Self.offloaded { try Self.up(hosts: hosts, name: name, subnet: subnet, smallDisk: smallDisk, timeout: timeout) }
    }

    public func exec(_ host: String, _ command: [String], timeout: TimeInterval = 60) async throws -> (status: Int32, output: String) {
        let result = try await Self.offloaded { try self.exec(host, command, timeout: timeout) as Output }
        return (result.status, result.output)
    }

    public func ssh(_ host: String, _ command: String, timeout: TimeInterval = 60) async throws -> (status: Int32, output: String) {
        let result = try await Self.offloaded { try self.ssh(host, command, timeout: timeout) as Output }
        return (result.status, result.output)
    }

    public func add(_ host: String, address: String, timeout: TimeInterval = 60) async throws -> TestNet {
        try await Self.offloaded { try self.add(host, address: address, timeout: timeout) }
    }

    public func remove(_ host: String, timeout: TimeInterval = 60) async throws -> TestNet {
        try await Self.offloaded { try self.remove(host, timeout: timeout) }
    }

    public func down(timeout: TimeInterval = 120) async throws {
        try await Self.offloaded { try self.down(timeout: timeout) }
    }

    // MARK: - Running the script

    private typealias Output = (status: Int32, output: String)

    private static func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private static func run(_ arguments: [String], timeout: TimeInterval) throws -> (status: Int32, output: String) {
        try Self.runProcess("/bin/bash", [Self.script] + arguments, timeout: timeout)
    }

    /// Runs a process with stdout and stderr into one pipe. After `timeout` seconds it gets
    /// SIGTERM (testnet.sh undoes a half-made `up` then), 10 s later SIGKILL, and this throws.
    /// Output is read until end of file, or for at most 2 s after the process exited (a
    /// process it left running may hold the pipe open).
    private static func runProcess(_ executable: String, _ arguments: [String], timeout: TimeInterval) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let collected = Collected()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                collected.finish()
            } else {
                collected.append(data)
            }
        }
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.runSerialized()
        } catch {
            pipe.fileHandleForReading.readabilityHandler = nil
            throw error
        }
        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if exited.wait(timeout: .now() + 10) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                exited.wait()
            }
        }
        _ = collected.ended.wait(timeout: .now() + 2)
        pipe.fileHandleForReading.readabilityHandler = nil
        let output = collected.text
        if timedOut {
            throw TestNetError("\(executable) \(arguments.joined(separator: " ")) did not finish in \(Int(timeout)) s; output: \(output)")
        }
        return (process.terminationStatus, output)
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private var finished = false
        let ended = DispatchSemaphore(value: 0)

        func append(_ more: Data) { self.lock.withLock { self.data.append(more) } }

        func finish() {
            let first = self.lock.withLock { () -> Bool in
                defer { self.finished = true }
                return !self.finished
            }
            if first { self.ended.signal() }
        }

        var text: String { self.lock.withLock { String(decoding: self.data, as: UTF8.self) } }
    }
}
