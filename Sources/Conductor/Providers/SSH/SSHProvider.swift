#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation

/// `kind: ssh`: places members on a pool of SSH hosts and installs, configures and starts
/// an agent on each, with nothing done by hand on the host.
///
/// For a member: the host is its place in the pool (the k-th member on the provider goes
/// to host k / members_per_host, so a re-run picks the same host); one remote step finds
/// the agent already running there (nothing is started twice), or finds the binary
/// missing or of another version (its SHA-256 differs) and then copies it, or writes the
/// agent's configuration (0600, in a 0700 folder) and starts it under systemd or a
/// supervisor with a pid file. The launcher then waits for its heartbeat. Every step has
/// a timeout; every failure names the host and the cause. Layout on the host:
/// `SSHScripts`. docs/launch.md.
public struct SSHProvider: InstanceProvider {
    public let name: String
    /// Nil: a provider that only reaches instances by their handles (`terminate` without
    /// the deployable).
    let pool: SSHPoolSettings?
    /// The members placed on this pool, in placement order.
    let members: [String]
    /// The `conductor` binary copied to hosts.
    let binary: String
    let heartbeatInterval: Double
    let logLevel: String

    public init(name: String, pool: SSHPoolSettings, members: [String], heartbeatInterval: Double = 1, logLevel: String = "warning") {
        self.name = name
        self.pool = pool
        self.members = members
        self.binary = pool.binary ?? Self.runningBinary()
        self.heartbeatInterval = heartbeatInterval
        self.logLevel = logLevel
    }

    /// Reaches instances through their handles only.
    public init(handlesOnlyNamed name: String = "ssh") {
        self.name = name
        self.pool = nil
        self.members = []
        self.binary = Self.runningBinary()
        self.heartbeatInterval = 1
        self.logLevel = "warning"
    }

    public static let kind = "ssh"

    /// The host a member goes to.
    func host(of member: String) throws(ProviderError) -> SSHHost {
        guard let pool else { throw ProviderError(provider: self.name, "no pool of hosts to place \(member) on") }
        guard let index = self.members.firstIndex(of: member), index / pool.membersPerHost < pool.hosts.count else {
            throw ProviderError(provider: self.name, "\(member) has no host in the pool (\(pool.hosts.count) hosts, \(pool.membersPerHost) member(s) each)")
        }
        return pool.hosts[index / pool.membersPerHost]
    }

    public func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        let host = try self.host(of: request.member)
        let placement = SSHPlacement(host: host, pool: self.pool!)
        let command = placement.command
        let checksum = try Self.checksum(of: self.binary, provider: self.name)
        let home = SSHScripts.home(installDirectory: placement.installDirectory, instanceID: request.instanceID)
        let bus = try self.bus(for: request, host: host, home: home)
        let environment = AgentLaunch.environment(request, brokerURL: bus.url, home: home)
        if let bad = environment.first(where: { $0.1.contains("'") || $0.1.contains("\n") }) {
            throw command.failure("configure", "\(bad.0) contains a quote or a line break, which the agent's configuration file cannot hold")
        }
        let arguments = AgentLaunch.arguments(request, home: home, heartbeatInterval: self.heartbeatInterval, logLevel: self.logLevel)
        let script = SSHScripts.ensure(
            installDirectory: placement.installDirectory, instanceID: request.instanceID, sha256: checksum.sha256, environment: environment,
            busCACertificate: bus.caCertificate, agentArguments: arguments, description: "\(request.member) of \(request.deployment)@\(request.environment)")
        let pool = self.pool!
        let binary = self.binary
        // One host's steps one after another: two members on a host copy the binary once.
        return try await HostSteps.shared.serialized(host.description) {
            var output = try await command.run(script: script, step: "install", timeout: pool.stepTimeout)
            if output.status == 3, let free = output.reports("need-binary").first.flatMap({ Int($0) }) {
                let needed = checksum.size / 1024 + 1024
                guard free >= needed else {
                    throw command.failure(
                        "copy",
                        "no disk space: \(placement.installDirectory) has \(free / 1024) MiB free, the conductor binary needs \(needed / 1024) MiB")
                }
                let copy = try await command.run(
                    remote: SSHScripts.upload(installDirectory: placement.installDirectory, sudo: pool.sudo), stdin: binary, step: "copy",
                    timeout: pool.copyTimeout)
                guard copy.status == 0, !copy.reports("copied").isEmpty else {
                    let cause = copy.stderr.contains("No space left") ? "no disk space left on the host while copying the binary" : Self.cause(copy)
                    throw command.failure("copy", "copying \(binary) to \(placement.installDirectory)/bin failed: \(cause)")
                }
                output = try await command.run(script: script, step: "install", timeout: pool.stepTimeout)
            }
            guard output.status == 0, !(output.reports("running") + output.reports("started")).isEmpty else {
                throw command.failure("install", Self.cause(output))
            }
            let value = String(decoding: (try? JSONEncoder().encode(placement)) ?? Data(), as: UTF8.self)
            return InstanceHandle(instanceID: request.instanceID, value: value, address: nil, kind: Self.kind)
        }
    }

    public func stop(_ handle: InstanceHandle) async throws {
        guard let placement = Self.placement(handle) else {
            throw ProviderError(provider: self.name, "the handle of instance \(handle.instanceID) names no SSH host")
        }
        let output = try await placement.command.run(
            script: SSHScripts.stop(installDirectory: placement.installDirectory, instanceID: handle.instanceID), step: "stop",
            timeout: placement.stepTimeout)
        guard output.status == 0, !output.reports("stopped").isEmpty else {
            throw placement.command.failure("stop", Self.cause(output))
        }
    }

    public func isAlive(_ handle: InstanceHandle) async -> Bool {
        guard let placement = Self.placement(handle) else { return false }
        return await Self.isRunning(handle.instanceID, placement: placement)
    }

    /// Asks every host of the pool (at once) whether this instance's agent runs there.
    public func locate(instanceID: String) async -> InstanceHandle? {
        guard let pool else { return nil }
        return await withTaskGroup(of: SSHPlacement?.self) { group in
            for host in pool.hosts {
                let placement = SSHPlacement(host: host, pool: pool)
                group.addTask { await Self.isRunning(instanceID, placement: placement) ? placement : nil }
            }
            for await found in group {
                if let found {
                    group.cancelAll()
                    let value = String(decoding: (try? JSONEncoder().encode(found)) ?? Data(), as: UTF8.self)
                    return InstanceHandle(instanceID: instanceID, value: value, address: nil, kind: Self.kind)
                }
            }
            return nil
        }
    }

    static func isRunning(_ instanceID: String, placement: SSHPlacement) async -> Bool {
        let output = try? await placement.command.run(
            script: SSHScripts.status(installDirectory: placement.installDirectory, instanceID: instanceID), step: "status",
            timeout: placement.stepTimeout)
        return output.map { !$0.reports("running").isEmpty } ?? false
    }

    static func placement(_ handle: InstanceHandle) -> SSHPlacement? {
        try? JSONDecoder().decode(SSHPlacement.self, from: Data(handle.value.utf8))
    }

    /// What a failed step said: its `error` line, else its last words.
    static func cause(_ output: SSHCommand.Output) -> String {
        if let error = output.reports("error").first { return error }
        let text = (output.stderr + "\n" + output.stdout).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return "the step exited with status \(output.status)" + (text.last.map { ": \($0)" } ?? "")
    }

    // MARK: - The bus as the host sees it

    /// The agent's bus URL with an address the host reaches: a loopback or wildcard host
    /// becomes the pool's `bus_address`, else the address this machine uses toward the host;
    /// over TLS, with the CA certificate the agent verifies the broker with
    /// (`InstanceURL.remoteBus`), which the install step writes beside agent.env.
    func bus(for request: InstanceStartRequest, host: SSHHost, home: String) throws(ProviderError) -> (url: String, caCertificate: String?) {
        guard request.busReach.beyondLoopback else {
            throw ProviderError(
                provider: self.name,
                "\(host) cannot reach the bus: the embedded bus listens on loopback only. Launch with --bus-listen 0.0.0.0 (or an address of this machine the hosts reach) and --bus-tls-cert/--bus-tls-key, or give --broker with an address they reach")
        }
        guard let current = InstanceURL.host(of: request.brokerURL), InstanceURL.isLocalOnly(current) else { return (request.brokerURL, nil) }
        guard let address = self.pool?.busAddress ?? Self.localAddress(toward: host.address, port: host.port) else {
            throw ProviderError(provider: self.name, "\(host): no address of this machine routes to it; set bus_address in the provider")
        }
        return try InstanceURL.remoteBus(request.brokerURL, reach: request.busReach, address: address, home: home, provider: self.name)
    }

    /// The source address the kernel picks for a connection to `address` (a UDP socket
    /// connected there sends nothing).
    static func localAddress(toward address: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var info: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, String(port), &hints, &info) == 0, let first = info else { return nil }
        defer { freeaddrinfo(info) }
        let descriptor = socket(first.pointee.ai_family, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        guard connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let printed = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
            }
        }
        guard printed == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - The binary's checksum

    /// This process's binary: its path, or `/proc/self/exe` when that file was replaced
    /// or deleted since it started (an upgrade, a rebuild): the kernel still holds the
    /// running version there, and that is the one whose agents must match.
    static func runningBinary() -> String {
        let path = LocalProvider.currentExecutable()
        var onDisk = stat()
        var running = stat()
        if stat(path, &onDisk) == 0, stat("/proc/self/exe", &running) == 0, onDisk.st_ino == running.st_ino, onDisk.st_dev == running.st_dev {
            return path
        }
        return FileManager.default.fileExists(atPath: "/proc/self/exe") ? "/proc/self/exe" : path
    }

    /// The binary's SHA-256 and size (`BinaryChecksum`), as a provider failure when unreadable.
    static func checksum(of path: String, provider: String) throws(ProviderError) -> BinaryChecksum {
        do {
            return try BinaryChecksum.of(path: path)
        } catch {
            throw ProviderError(provider: provider, "cannot read the conductor binary \(path) to copy to the hosts: \(error)")
        }
    }
}

/// Runs the steps for one host one after another (members sharing a host), hosts in parallel.
actor HostSteps {
    static let shared = HostSteps()
    private var tails: [String: Task<Void, Never>] = [:]

    func serialized<T: Sendable>(_ host: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let previous = self.tails[host]
        let task = Task<T, any Error> {
            await previous?.value
            return try await body()
        }
        self.tails[host] = Task { _ = try? await task.value }
        return try await task.value
    }
}
