#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ProcessSupport
import Synchronization

/// The default provider: each instance is a `conductor agent` child process on this
/// machine, with its own instance id, directory and loopback address (127.0.0.N), which
/// it reports as its `ipaddress` fact so services really bind to distinct addresses.
/// No member gets an address another live deployment on this machine holds
/// (`LocalAddressPlan`): on the default addresses the deployment moves to a free /24, on
/// requested ones (`--local-addresses`) the member is refused.
///
/// The agent gets everything through its environment, not its argv (where `ps` would
/// show the broker password): `CONDUCTOR_BROKER_URL`, `CONDUCTOR_INSTANCE_ID`,
/// `CONDUCTOR_IPADDRESS`, `CONDUCTOR_DEPLOYMENT`; its scripts inherit `CONDUCTOR_WORK_DIR` and
/// `CONDUCTOR_FACTS_DIR` (write a custom fact there, then it is published).
/// Stopping an instance stops the agent, then every process that still carries its
/// instance id in its environment (servers its scripts left running).
public struct LocalProvider: InstanceProvider {
    public let name = "local"
    /// The `conductor` binary that runs `agent`.
    public var executable: String
    /// The first three octets of the addresses; members get .2, .3, … (then the next /24).
    public var addressPrefix: (UInt8, UInt8, UInt8)
    /// True when the prefix was asked for: an address of it that another deployment holds
    /// is refused. False (the default 127.0.0): the deployment moves to a free /24.
    public var addressPrefixIsRequested: Bool
    public var heartbeatInterval: Double
    public var logLevel: String

    /// `addressPrefix` nil: 127.0.0, or the first /24 above it that no live deployment uses.
    public init(executable: String = LocalProvider.currentExecutable(), addressPrefix: (UInt8, UInt8, UInt8)? = nil, heartbeatInterval: Double = 1, logLevel: String = "warning") {
        self.executable = executable
        self.addressPrefix = addressPrefix ?? (127, 0, 0)
        self.addressPrefixIsRequested = addressPrefix != nil
        self.heartbeatInterval = heartbeatInterval
        self.logLevel = logLevel
    }

    public var addressPlan: LocalAddressPlan {
        LocalAddressPlan(prefix: self.addressPrefix, requested: self.addressPrefixIsRequested)
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

    /// 127.0.0.2 for ordinal 0 when no other deployment is in the way; 250 members per
    /// /24, never .0, .1 or .255.
    public func address(ordinal: Int) -> String {
        self.addressPlan.address(ordinal: ordinal)
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
        // Chosen and taken under one machine-wide lock: a launch running beside this one
        // sees our agent (and its address) before it chooses.
        return try await Self.withAddressLock {
            let home = Self.deploymentHome(ofMemberDirectory: request.workDirectory)
            let address: String
            switch self.addressPlan.choose(ordinal: request.ordinal, home: home, holders: Self.addressHolders()) {
            case .use(let chosen):
                address = chosen
            case .taken(let taken, let holder, let free):
                let suggestion = free.map { ", e.g. --local-addresses \($0), which no live deployment uses" } ?? ""
                throw ProviderError(
                    provider: self.name,
                    "\(taken) is in use by deployment \(holder.deployment)\(holder.member.map { " (member \($0))" } ?? "") in \(holder.home); nothing was started for \(request.member). Choose other addresses with --local-addresses\(suggestion), or terminate \(holder.deployment) first"
                )
            }
            return try self.spawnAgent(request, address: address, work: work)
        }
    }

    private func spawnAgent(_ request: InstanceStartRequest, address: String, work: String) throws -> InstanceHandle {
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in AgentLaunch.environment(request, brokerURL: request.brokerURL, home: request.workDirectory) {
            environment[name] = value
        }
        environment["CONDUCTOR_IPADDRESS"] = address
        let arguments = AgentLaunch.arguments(request, home: request.workDirectory, heartbeatInterval: self.heartbeatInterval, logLevel: self.logLevel)
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
        _ = Self.started.withLock { $0.insert(pid) }
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
        // Reaped there if it was ours: its number may now go to another child.
        _ = Self.started.withLock { $0.remove(pid) }
    }

    /// Running and not a zombie (a zombie's environment reads empty); an agent this process
    /// started that ended is reaped on the way. Only those: a recorded pid may since belong to
    /// another child of ours (a job a local agent in this process runs), whose own waiter
    /// must reap it.
    static func isRunning(_ pid: Int32) -> Bool {
        let ours = Self.started.withLock { $0.contains(pid) }
        if ours, ChildProcess.poll(pid) != nil { _ = Self.started.withLock { $0.remove(pid) } }
        return ChildProcess.isRunning(pid)
    }

    /// The agents this process started and has not reaped yet.
    private static let started = Mutex<Set<Int32>>([])

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
        ChildProcess.firstArgument(of: pid) == "agent"
    }

    /// Every live process (of this user) that carries a local instance's address: agents,
    /// and servers their scripts left running (they inherit the agent's environment).
    static func addressHolders() -> [LocalAddressPlan.Holder] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let me = getpid()
        return entries.compactMap(Int32.init).filter { $0 != me }.compactMap { pid in
            let environment = environment(of: pid)
            guard let address = environment["CONDUCTOR_IPADDRESS"], let instance = environment["CONDUCTOR_INSTANCE_ID"] else { return nil }
            // An agent from before CONDUCTOR_DEPLOYMENT still has its member directory.
            let home = environment["CONDUCTOR_WORK_DIR"].map { deploymentHome(ofMemberDirectory: ($0 as NSString).deletingLastPathComponent) }
            return LocalAddressPlan.Holder(
                address: address, deployment: environment["CONDUCTOR_DEPLOYMENT"] ?? "of instance \(instance)",
                home: home ?? "instance \(instance)", member: environment["CONDUCTOR_MEMBER"])
        }
    }

    /// The launcher gives each member `<state-dir>/deployments/<name>@<env>/<member>`: the
    /// deployment is the parent, so two `--state-dir`s make two deployments.
    static func deploymentHome(ofMemberDirectory directory: String) -> String {
        URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// Runs `body` holding this user's machine-wide address lock (an `flock` on a file in
    /// /tmp, released if the process dies), polled so no thread blocks on it. Without the
    /// file (a read-only /tmp) it runs unlocked: the lock only narrows a race.
    static func withAddressLock<T>(_ body: () throws -> T) async throws -> T {
        let descriptor = open("/tmp/conductor-local-addresses-\(getuid()).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return try body() }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            try await Task.sleep(for: .milliseconds(5))
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Every live process (of this user) whose environment names this instance.
    static func processes(carrying instanceID: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let me = getpid()
        return entries.compactMap(Int32.init).filter { $0 != me && carries(pid: $0, instanceID: instanceID) }.sorted()
    }
}
