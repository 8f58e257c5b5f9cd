import AMQPClient
import Agent
import ArgumentParser
import Conductor
import ConductorBench
import Foundation
import Mesh
import MeshClient
import ProcessSupport

#if canImport(Glibc)
import Glibc
#endif

/// Exit codes of `lock`, `signal` and `wait` (besides a command's own under `lock --`).
enum PrimitiveExit {
    /// The bus, the local agent or the coordinator could not be reached (or is stopping, or
    /// failed): trying again later may work.
    static let unavailable: Int32 = 69
    /// The coordinator answered and refused the request (EX_DATAERR): a lock in use with
    /// another limit, arguments it does not accept. The same call will never succeed.
    static let refused: Int32 = 65
    /// The lock was lost while the command ran: the command was killed.
    static let lost: Int32 = 70
    /// Not acquired within --wait, or the event did not happen within --timeout.
    static let timedOut: Int32 = 75
}

/// How `lock`, `signal` and `wait` reach the coordinator: the local agent's socket when
/// `CONDUCTOR_AGENT_SOCKET` names one (no bus handshake), else the bus.
struct PrimitiveBusOptions: ParsableArguments {
    @OptionGroup var bus: BusOptions

    @Option(name: .long, help: "The coordinator's scope: conductor:coordinator:<scope> (default: $CONDUCTOR_COORDINATOR_SCOPE, else the scope of the `conductor serve` whose record gave the bus, else default).")
    var scope: String?

    @Flag(name: .long, help: "Use the bus even when a local agent socket ($CONDUCTOR_AGENT_SOCKET) is there.")
    var noAgent = false

    var resolvedScope: String { self.resolvedScope(recorded: nil) }

    func resolvedScope(recorded: String?) -> String {
        self.scope ?? ProcessInfo.processInfo.environment["CONDUCTOR_COORDINATOR_SCOPE"].flatMap { $0.isEmpty ? nil : $0 } ?? recorded
            ?? Coordinator.defaultScope
    }

    /// `login`: which login of a live local coordinator's record to use; a command for the
    /// coordinator's own login (`lock release --force`) never goes through an agent.
    func connect(command: String, login: BusOptions.LocalLogin = .recipe) async -> any CoordinatorCalling {
        let environment = ProcessInfo.processInfo.environment
        if !self.noAgent, login == .recipe, self.bus.broker == nil, let socket = environment[LocalSocketServer.environmentVariable], !socket.isEmpty,
            FileManager.default.fileExists(atPath: socket)
        {
            do {
                return try LocalSocketClient.connect(path: socket, scope: self.resolvedScope)
            } catch {
                PrimitiveOutput.warn(command, "local agent socket not usable, using the bus: \(error.message)")
            }
        }
        let configuration: AMQPConnectionConfiguration
        let source: String
        let recordedScope: String?
        do {
            (configuration, source, recordedScope) = try self.bus.configurationAndScope(local: login)
        } catch {
            PrimitiveOutput.fail(command, "\(error)", code: PrimitiveExit.unavailable)
        }
        do {
            var recovering = configuration
            recovering.recovery = .disabled
            return try await CoordinatorClient.connect(recovering, scope: self.resolvedScope(recorded: recordedScope))
        } catch {
            PrimitiveOutput.fail(command, "cannot reach the bus at \(configuration.redactedURL) (from \(source)): \(error)", code: PrimitiveExit.unavailable)
        }
    }

    /// Connects, makes one call and closes; a connection or call that fails ends the
    /// process with the exit code the failure maps to (`PrimitiveOutput.fail`).
    func call<Result>(
        command: String, login: BusOptions.LocalLogin = .recipe, _ body: (any CoordinatorCalling) async throws -> Result
    ) async -> Result {
        let client = await self.connect(command: command, login: login)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            PrimitiveOutput.fail(command, error)
        }
    }
}

enum PrimitiveOutput {
    static func warn(_ command: String, _ text: String) {
        FileHandle.standardError.write(Data("conductor \(command): \(text)\n".utf8))
    }

    static func fail(_ command: String, _ text: String, code: Int32) -> Never {
        Self.warn(command, text)
        Foundation.exit(code)
    }

    /// Ends the process for a failed call (or passes an `ExitCode` through).
    static func fail(_ command: String, _ error: any Error) -> Never {
        if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
        if let error = error as? CoordinatorCallError { Self.fail(command, error.message, code: Self.code(for: error)) }
        Self.fail(command, "\(error)", code: PrimitiveExit.unavailable)
    }

    static func json(_ value: MeshValue) {
        FileHandle.standardOutput.write(Data(value.jsonBytes + [UInt8(ascii: "\n")]))
    }

    /// The exit code for a failed call: the coordinator's "timeout" is timed out, its other
    /// 4xx answers (409 another limit, 400 bad arguments, ...) refused; no answer, 410 (it is
    /// stopping) and 5xx (it failed) are unavailable.
    static func code(for error: CoordinatorCallError) -> Int32 {
        guard let exception = error.exception else { return PrimitiveExit.unavailable }
        switch exception.code {
        case .timeout: return PrimitiveExit.timedOut
        case .gone: return PrimitiveExit.unavailable
        case let code where (400..<500).contains(code.rawValue): return PrimitiveExit.refused
        default: return PrimitiveExit.unavailable
        }
    }

    /// "30", "30s", "500ms", "2m", "0": seconds by default.
    static func parseDuration(_ text: String, allowZero: Bool = true) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let scales: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(trimmed)
        var scale = 1.0
        for (suffix, factor) in scales where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value.isFinite, value >= 0, allowZero || value > 0, value * scale <= 86_400 else { return nil }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    static func holderName() -> String {
        let environment = ProcessInfo.processInfo.environment
        let node = environment["CONDUCTOR_INSTANCE_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.hostName
        return "\(node):\(getpid())"
    }
}

/// `conductor lock`: a cluster-wide lock (or semaphore) around a command, or in two steps.
struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Run a command while holding a cluster-wide lock, or acquire/release one in two steps.",
        discussion: """
            conductor lock NAME [--ttl S] [--wait S] [--limit N] -- COMMAND... runs COMMAND \
            while holding NAME; see `conductor lock run --help`. The two-step form is \
            `acquire` (prints the fencing token and the holder key), `renew` and `release` \
            (which need both: only the holder may renew or release); `status` shows holders; \
            `release --force` is an administrator's way to end someone else's hold. \
            A lock whose name is a subcommand's (e.g. "status") needs the explicit `lock run` form.

            See docs/primitives.md for the guarantees and recipe examples.
            """,
        subcommands: [LockRunCommand.self, LockAcquireCommand.self, LockRenewCommand.self, LockReleaseCommand.self, LockStatusCommand.self, LockSuperviseCommand.self, LockBenchCommand.self],
        defaultSubcommand: LockRunCommand.self
    )
}

struct LockRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run COMMAND while holding lock NAME (the default form of `conductor lock`).",
        discussion: """
            Waits up to --wait for the lock (first come, first served), runs COMMAND with \
            CONDUCTOR_LOCK_NAME and CONDUCTOR_LOCK_TOKEN (the fencing token: it only ever \
            increases, so a resource can refuse a holder older than the last one it saw) in its \
            environment, renews the lease every third of --ttl, and releases the lock when \
            COMMAND ends. If the lease cannot be renewed, COMMAND (its whole process group) is \
            killed before the lease can run out, counted from when the request was sent: two \
            holders never run at once. If this process dies, the coordinator releases the lock \
            as soon as it sees the connection gone (or the lease end, whichever comes first).

            Exit status: COMMAND's own; 75 when the lock was not acquired within --wait \
            (the error names the holders); 70 when the lock was lost and COMMAND killed; 69 \
            when the bus or the coordinator cannot be reached; 65 when the coordinator refused \
            the request (the lock is in use with another --limit, which it names).
            """
    )

    @Argument(help: "The lock's name (letters, digits and - _ . : / @).")
    var name: String

    @Option(name: .long, help: "Lease length, renewed while COMMAND runs: 30s, 500ms, 2m (default 30s).")
    var ttl: String = "30s"

    @Option(name: .long, help: "How long to wait for the lock: 0 means fail at once if busy (default 5m).")
    var wait: String = "5m"

    @Option(name: .long, help: "Up to N holders at once: a semaphore (default 1). Every holder must use the same N.")
    var limit: Int = 1

    @Flag(name: .long, help: "Print a JSON summary (lock, token, exit code, lost) on stdout when COMMAND ends.")
    var json = false

    @OptionGroup var coordinator: PrimitiveBusOptions

    @Argument(parsing: .postTerminator, help: "The command to run, after `--`.")
    var command: [String] = []

    func validate() throws {
        guard !self.command.isEmpty else { throw ValidationError("give the command to run after `--`, e.g. conductor lock \(self.name) -- ./migrate.sh") }
        do { try LockNames.validate(self.name) } catch { throw ValidationError(error.message) }
        guard let ttl = PrimitiveOutput.parseDuration(self.ttl, allowZero: false), ttl >= .milliseconds(300) else {
            throw ValidationError("--ttl must be a duration of at least 300ms, like 30s or 2m, not '\(self.ttl)'")
        }
        guard PrimitiveOutput.parseDuration(self.wait) != nil else { throw ValidationError("--wait must be a duration like 0, 30s or 5m, not '\(self.wait)'") }
        guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit must be 1...10000") }
    }

    func run() async throws {
        let ttl = PrimitiveOutput.parseDuration(self.ttl)!
        let wait = PrimitiveOutput.parseDuration(self.wait)!
        let client = await self.coordinator.connect(command: "lock")
        let sent = ContinuousClock.now
        let acquired = await Self.acquire(client, lock: self.name, limit: self.limit, ttl: ttl, wait: wait)
        guard case .success(let grant) = acquired else {
            await client.close()
            if case .failure(let error) = acquired { PrimitiveOutput.fail("lock", error) }
            return
        }
        guard let leaseEnd = await Self.leaseBeforeStart(client, grant: grant, ttl: ttl, sent: sent) else {
            await client.close()
            PrimitiveOutput.fail("lock", "lock '\(self.name)' (token \(grant.token)) was lost before the command started", code: PrimitiveExit.lost)
        }
        let spawned = Result {
            try SupervisedChild.spawn(
                supervisorArguments: ["lock", "supervise", "--"], command: self.command,
                environment: ["CONDUCTOR_LOCK_NAME": self.name, "CONDUCTOR_LOCK_TOKEN": String(grant.token)])
        }
        guard case .success(let child) = spawned else {
            _ = try? await client.release(grant)
            await client.close()
            PrimitiveOutput.fail("lock", "cannot start \(self.command[0]): \(spawned)", code: 127)
        }
        let lost = await Self.hold(child: child, client: client, grant: grant, ttl: ttl, leaseEnd: leaseEnd)
        if !lost { _ = try? await client.release(grant) }
        await client.close()
        let status = child.exitStatus
        if self.json {
            PrimitiveOutput.json(.map([
                "lock": .string(self.name), "token": .int(grant.token), "exit_code": .int(Int64(status)), "lost": .bool(lost),
            ]))
        }
        if lost {
            PrimitiveOutput.fail(
                "lock", "lock '\(self.name)' (token \(grant.token)) was lost: the lease could not be renewed (it ran out, or was released by force); the command was killed",
                code: PrimitiveExit.lost)
        }
        throw ExitCode(status)
    }

    static func acquire(_ client: any CoordinatorCalling, lock: String, limit: Int, ttl: Duration, wait: Duration) async -> Result<LockGrant, CoordinatorCallError> {
        do {
            return .success(try await client.acquire(lock: lock, limit: limit, ttl: ttl, wait: wait, holder: PrimitiveOutput.holderName()))
        } catch {
            return .failure(error)
        }
    }

    /// The lease end COMMAND may start with, counted from a request's sending. A grant that
    /// came over a third of the TTL after its acquire (it waited in line) is renewed first:
    /// counted from the acquire, its lease may be nearly over, and COMMAND would be killed
    /// as it starts. Nil when the renewal finds the lock no longer held.
    static func leaseBeforeStart(_ client: any CoordinatorCalling, grant: LockGrant, ttl: Duration, sent: ContinuousClock.Instant) async -> ContinuousClock.Instant? {
        guard ContinuousClock.now - sent > ttl / 3 else { return sent + ttl }
        let renewing = ContinuousClock.now
        do {
            return try await client.renew(grant, timeout: ttl / 3).held ? renewing + ttl : nil
        } catch {
            // As for any failed renewal: COMMAND runs on the lease it has, and the guardian
            // kills it before that ends unless a later renewal succeeds.
            PrimitiveOutput.warn("lock", "lease of '\(grant.lock)' not renewed: \(error.message)")
            return sent + ttl
        }
    }

    /// Runs until the child exits, renewing the lease with the grant's holder key (kept in
    /// this process only: COMMAND does not get it); true when the lock was lost (and the
    /// child killed).
    static func hold(child: SupervisedChild, client: any CoordinatorCalling, grant: LockGrant, ttl: Duration, leaseEnd: ContinuousClock.Instant) async -> Bool {
        let guardian = LeaseGuardian(leaseEnd: leaseEnd)
        let lost = await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                await child.waitForExit()
                return nil
            }
            group.addTask { await guardian.keepRenewing(client: client, grant: grant, ttl: ttl) }
            group.addTask { await guardian.killWhenLeaseEnds(child, ttl: ttl) }
            var lost = false
            while let outcome = await group.next() {
                if outcome == true {
                    lost = true
                    child.kill()
                }
                if outcome == nil || outcome == true { break }
            }
            group.cancelAll()
            return lost
        }
        await child.waitForExit()
        // The command's exit may be seen before the task that killed it reports.
        return lost || guardian.wasLost
    }
}

/// The lease as this process knows it: the deadline counts from when each request was
/// *sent*, so it always ends before the coordinator's.
final class LeaseGuardian: @unchecked Sendable {
    private let lock = NSLock()
    private var leaseEnd: ContinuousClock.Instant
    private var lost = false

    init(leaseEnd: ContinuousClock.Instant) { self.leaseEnd = leaseEnd }

    var deadline: ContinuousClock.Instant { self.lock.withLock { self.leaseEnd } }
    /// Whether the lock was found lost (and the command killed), whichever task saw it.
    var wasLost: Bool { self.lock.withLock { self.lost } }

    /// Renews every third of the TTL. Returns true when the coordinator says the lock is
    /// gone, or that this process is not its holder (the command must stop now); keeps
    /// retrying a renewal that failed otherwise until cancelled.
    func keepRenewing(client: any CoordinatorCalling, grant: LockGrant, ttl: Duration) async -> Bool? {
        while !Task.isCancelled {
            try? await Task.sleep(for: ttl / 3)
            if Task.isCancelled { return false }
            let sent = ContinuousClock.now
            do {
                let result = try await client.renew(grant, timeout: ttl / 3)
                if !result.held {
                    self.lock.withLock { self.lost = true }
                    return true
                }
                self.lock.withLock { self.leaseEnd = max(self.leaseEnd, sent + ttl) }
            } catch where error.exception?.code == .forbidden {
                PrimitiveOutput.warn("lock", "lease of '\(grant.lock)' not renewed: \(error.message)")
                self.lock.withLock { self.lost = true }
                return true
            } catch {
                PrimitiveOutput.warn("lock", "lease of '\(grant.lock)' not renewed: \(error.message)")
            }
        }
        return false
    }

    /// Kills the command a safety margin before the lease this process knows of ends.
    func killWhenLeaseEnds(_ child: SupervisedChild, ttl: Duration) async -> Bool? {
        let margin = min(ttl / 5, .seconds(2))
        while !Task.isCancelled {
            let killAt = self.deadline - margin
            if ContinuousClock.now >= killAt {
                self.lock.withLock { self.lost = true }
                child.kill()
                return true
            }
            try? await Task.sleep(until: min(killAt, ContinuousClock.now + .milliseconds(100)), clock: .continuous)
        }
        return false
    }
}

/// `conductor lock supervise -- COMMAND`: internal. Runs COMMAND in its own process group
/// (the supervisor's) and kills that group as soon as the `lock` process that started it
/// is gone (see `SupervisedChild`).
struct LockSuperviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "supervise", abstract: "Internal: runs a locked command for `conductor lock`.", shouldDisplay: false)

    @Argument(parsing: .postTerminator) var command: [String] = []

    func run() throws {
        guard !self.command.isEmpty else { throw ExitCode(2) }
        throw ExitCode(SupervisedChild.superviseCommand(self.command))
    }
}

/// `conductor lock bench`: hidden. Measures the client API (process start not counted):
/// uncontended acquire+release round trips and handoffs to a waiting client, against an
/// in-process coordinator with a SQLite store, on an embedded broker or --broker.
struct LockBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Internal: lock latency benchmark (scripts/bench-lock.sh).", shouldDisplay: false)

    @Option(name: .long, help: "AMQP URL of a broker to use (default: an embedded broker on 127.0.0.1).") var broker: String?
    @Option(name: .long, help: "Uncontended acquire+release cycles.") var cycles: Int = 2000
    @Option(name: .long, help: "Handoffs to a waiting client.") var handoffs: Int = 500
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "Keep locks in memory instead of a SQLite state store (to see the store's share).") var memory = false

    func validate() throws {
        guard (1...1_000_000).contains(self.cycles), (1...1_000_000).contains(self.handoffs) else {
            throw ValidationError("--cycles and --handoffs must be between 1 and 1000000")
        }
    }

    func run() async throws {
        let result = try await LockBench.run(LockBench.Settings(broker: self.broker, cycles: self.cycles, handoffs: self.handoffs, memory: self.memory))
        if self.json {
            var map: [String: MeshValue] = ["cycles": .int(Int64(self.cycles)), "handoffs": .int(Int64(self.handoffs)), "broker": .string(result.embeddedBroker ? "embedded" : "external")]
            for (key, value) in result.milliseconds { map[key] = .double((value * 1000).rounded() / 1000) }
            PrimitiveOutput.json(.map(map))
        } else {
            for (key, value) in result.milliseconds { print("\(key)\t\(String(format: "%.3f", value))") }
        }
    }
}
