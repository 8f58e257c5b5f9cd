#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ProcessSupport

/// The default provider: each instance is a `conductor agent` child process on this
/// machine, with its own instance id, directory and loopback address (127.0.0.N), which
/// it reports as its `ipaddress` fact so services really bind to distinct addresses.
///
/// The agent gets everything through its environment, not its argv (where `ps` would
/// show the broker password): `CONDUCTOR_BROKER_URL`, `CONDUCTOR_INSTANCE_ID`,
/// `CONDUCTOR_IPADDRESS`; its scripts inherit `CONDUCTOR_WORK_DIR` and
/// `CONDUCTOR_FACTS_DIR` (write a custom fact there, then it is published).
/// Stopping an instance stops the agent, then every process that still carries its
/// instance id in its environment (servers its scripts left running).
public struct LocalProvider: InstanceProvider {
    public let name = "local"
    /// The `conductor` binary that runs `agent`.
    public var executable: String
    /// The first three octets of the addresses; members get .2, .3, … (then the next /24).
    public var addressPrefix: (UInt8, UInt8, UInt8)
    public var heartbeatInterval: Double
    public var logLevel: String

    public init(executable: String = LocalProvider.currentExecutable(), addressPrefix: (UInt8, UInt8, UInt8) = (127, 0, 0), heartbeatInterval: Double = 1, logLevel: String = "warning") {
        self.executable = executable
        self.addressPrefix = addressPrefix
        self.heartbeatInterval = heartbeatInterval
        self.logLevel = logLevel
    }

    /// This process's own binary (`/proc/self/exe`), so the agents are the same version.
    public static func currentExecutable() -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    }

    /// Parses `--local-addresses` (three octets of 127.0.0.0/8, like `127.0.0`); nil otherwise.
    public static func addressPrefix(_ text: String) -> (UInt8, UInt8, UInt8)? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let octets = parts.compactMap { UInt8($0) }
        guard parts.count == 3, octets.count == 3, octets[0] == 127 else { return nil }
        return (octets[0], octets[1], octets[2])
    }

    /// 127.0.0.2 for ordinal 0; 250 members per /24, never .0, .1 or .255.
    public func address(ordinal: Int) -> String {
        let third = Int(self.addressPrefix.2) + ordinal / 250
        let second = Int(self.addressPrefix.1) + third / 256
        return "\(self.addressPrefix.0).\(second % 256).\(third % 256).\(2 + ordinal % 250)"
    }

    public func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        let fm = FileManager.default
        let state = request.workDirectory + "/state"
        let facts = request.workDirectory + "/facts.d"
        let work = request.workDirectory + "/work"
        do {
            for directory in [state, facts, work] { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        } catch {
            throw ProviderError(provider: self.name, "cannot create \(request.workDirectory): \(error.localizedDescription)")
        }
        let address = self.address(ordinal: request.ordinal)
        var environment = ProcessInfo.processInfo.environment
        environment["CONDUCTOR_BROKER_URL"] = request.brokerURL
        environment["CONDUCTOR_INSTANCE_ID"] = request.instanceID
        environment["CONDUCTOR_IPADDRESS"] = address
        environment["CONDUCTOR_WORK_DIR"] = work
        environment["CONDUCTOR_FACTS_DIR"] = facts
        environment["CONDUCTOR_MEMBER"] = request.member
        environment["CONDUCTOR_TRUSTED_KEYS"] = request.trustedKeys.joined(separator: " ")

        let arguments = [
            "agent", "--state-dir", state, "--facts-dir", facts, "--trusted-user", request.trustedUser,
            "--heartbeat-interval", "\(self.heartbeatInterval)", "--refresh-interval", "5", "--grace-period", "5",
            "--log-level", self.logLevel,
        ]
        // Its own process group: a Ctrl-C in our terminal is ours to handle (stop the
        // instances in order), not a signal every agent gets at once.
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(
                SpawnRequest(
                    executable: self.executable, arguments: arguments, environment: environment, workingDirectory: work,
                    stdin: .null, stdout: .appending(path: request.workDirectory + "/agent.log"),
                    stderr: .appending(path: request.workDirectory + "/agent.log"), grouping: .newGroup, closeOtherDescriptors: true))
        } catch {
            throw ProviderError(provider: self.name, "cannot run \(self.executable) agent: \(error)")
        }
        return InstanceHandle(instanceID: request.instanceID, value: String(pid), address: address)
    }

    public func stop(_ handle: InstanceHandle) async throws {
        if let pid = Int32(handle.value), Self.carries(pid: pid, instanceID: handle.instanceID) {
            await Self.terminate(pid)
        }
        // Servers the scripts started in the background carry the instance id too.
        for pid in Self.processes(carrying: handle.instanceID) { await Self.terminate(pid) }
    }

    public func isAlive(_ handle: InstanceHandle) async -> Bool {
        guard let pid = Int32(handle.value) else { return false }
        return Self.carries(pid: pid, instanceID: handle.instanceID) && Self.isAgent(pid)
    }

    public func locate(instanceID: String) async -> InstanceHandle? {
        guard let pid = Self.processes(carrying: instanceID).first(where: Self.isAgent) else { return nil }
        let address = Self.environment(of: pid)["CONDUCTOR_IPADDRESS"]
        return InstanceHandle(instanceID: instanceID, value: String(pid), address: address)
    }

    // MARK: - Processes, through /proc (Linux)

    /// SIGTERM, up to 6 s (the agent's grace period is 5 s), then SIGKILL.
    static func terminate(_ pid: Int32) async {
        await ChildProcess.terminate(pid, grace: .seconds(6))
    }

    /// Running and not a zombie (a zombie's environment reads empty); an agent of ours
    /// that ended is reaped on the way.
    static func isRunning(_ pid: Int32) -> Bool {
        _ = ChildProcess.poll(pid)
        return ChildProcess.isRunning(pid)
    }

    static func environment(of pid: Int32) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
        var result: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return result
    }

    static func carries(pid: Int32, instanceID: String) -> Bool {
        isRunning(pid) && environment(of: pid)["CONDUCTOR_INSTANCE_ID"] == instanceID
    }

    static func isAgent(_ pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return data.split(separator: 0).dropFirst().first.map { String(decoding: $0, as: UTF8.self) } == "agent"
    }

    /// Every live process (of this user) whose environment names this instance.
    static func processes(carrying instanceID: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let me = getpid()
        return entries.compactMap(Int32.init).filter { $0 != me && carries(pid: $0, instanceID: instanceID) }.sorted()
    }
}
