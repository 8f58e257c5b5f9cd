import ArgumentParser
import Foundation
import Mesh
import MeshClient

// The two-step form of `conductor lock` (acquire, renew, release) and `status`: for recipes
// that cannot wrap their work in one command (docs/primitives.md, "The two-step form").

struct LockAcquireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acquire",
        abstract: "Acquire a lock for a later `release` (prints the fencing token and the holder key).",
        discussion: """
            For recipes that cannot wrap the work in one command. The lock is held by its \
            lease alone: it outlives this process, and ends at `conductor lock release NAME \
            TOKEN` or when --ttl passes without `conductor lock renew NAME TOKEN`, whichever \
            comes first. Choose a --ttl longer than the work; nothing kills the work when the \
            lease ends, so prefer `conductor lock NAME -- COMMAND` when you can.

            Prints `TOKEN KEY` on one line (or JSON with --json, the key as holder_key). The \
            token is public (`lock status` shows it) and goes to fenced resources; the key is \
            the holder's secret: renew and release need it (export it as \
            \(LockKeyOption.environmentVariable), or pass --key), and nobody else gets it:

              LOCK=$(conductor lock acquire backup --ttl 2h)
              TOKEN=${LOCK% *}; export \(LockKeyOption.environmentVariable)=${LOCK#* }
              ... ; conductor lock release backup "$TOKEN"

            Exit status: 0 acquired, 75 not acquired within --wait, 69 bus or coordinator \
            unreachable, 65 refused by the coordinator (the lock is in use with another \
            --limit, which it names).
            """
    )

    @Argument(help: "The lock's name.") var name: String
    @Option(name: .long, help: "Lease length (default 10m).") var ttl: String = "10m"
    @Option(name: .long, help: "How long to wait for the lock (default 5m; 0: fail at once).") var wait: String = "5m"
    @Option(name: .long, help: "Up to N holders at once (default 1).") var limit: Int = 1
    @Flag(name: .long, help: "Print {lock, token, lease_ms, limit, holder_key} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func validate() throws {
        do { try LockNames.validate(self.name) } catch { throw ValidationError(error.message) }
        guard PrimitiveOutput.parseDuration(self.ttl, allowZero: false) != nil else { throw ValidationError("--ttl must be a duration like 10m or 600, not '\(self.ttl)'") }
        guard PrimitiveOutput.parseDuration(self.wait) != nil else { throw ValidationError("--wait must be a duration like 0, 30s or 5m, not '\(self.wait)'") }
        guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit must be 1...10000") }
    }

    func run() async throws {
        let grant = await self.coordinator.call(command: "lock acquire") { client in
            try await client.acquire(
                lock: self.name, limit: self.limit, ttl: PrimitiveOutput.parseDuration(self.ttl)!, wait: PrimitiveOutput.parseDuration(self.wait)!,
                holder: PrimitiveOutput.holderName(), owned: false)
        }
        if self.json {
            PrimitiveOutput.json(try MeshValue(encoding: grant))
        } else {
            // A coordinator older than holder keys hands out none: the token alone then.
            print(grant.holderKey.map { "\(grant.token) \($0)" } ?? String(grant.token))
        }
    }
}

/// `--key`, else `$CONDUCTOR_LOCK_KEY`: the holder key `acquire` printed.
struct LockKeyOption: ParsableArguments {
    static let environmentVariable = "CONDUCTOR_LOCK_KEY"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The holder key `acquire` printed after the token (default: $\(LockKeyOption.environmentVariable)).",
            discussion: "Prefer the environment variable: a command line is visible to every user of the machine.",
            valueName: "KEY"))
    var key: String?

    var resolved: String? {
        self.key ?? ProcessInfo.processInfo.environment[Self.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The coordinator's refusal, with what to give in this CLI.
    static func explained(_ error: CoordinatorCallError, hadKey: Bool) -> CoordinatorCallError {
        guard error.exception?.code == .forbidden else { return error }
        let hint = hadKey
            ? "the key given (--key or $\(Self.environmentVariable)) is not this token's"
            : "give the key `conductor lock acquire` printed after the token, with --key or $\(Self.environmentVariable)"
        return CoordinatorCallError(error.code, "\(error.message) (\(hint))", exception: error.exception)
    }
}

struct LockRenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Extend the lease of a lock taken with `acquire` (needs its holder key).",
        discussion: "Exit status: 0 renewed, 1 the token no longer holds the lock, 69 bus or coordinator unreachable, 65 refused by the coordinator (e.g. no or the wrong holder key: only the holder may renew)."
    )

    @Argument(help: "The lock's name.") var name: String
    @Argument(help: "The token `acquire` printed.") var token: Int64
    @OptionGroup var key: LockKeyOption
    @Option(name: .long, help: "New lease length from now (default: the one it was acquired with).") var ttl: String?
    @Flag(name: .long, help: "Print {lock, token, lease_ms, held} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func validate() throws {
        if let ttl, PrimitiveOutput.parseDuration(ttl, allowZero: false) == nil { throw ValidationError("--ttl must be a duration like 10m, not '\(ttl)'") }
    }

    func run() async throws {
        let key = self.key.resolved
        let result = await self.coordinator.call(command: "lock renew") { client in
            do {
                return try await client.renew(lock: self.name, token: self.token, holderKey: key, ttl: self.ttl.flatMap { PrimitiveOutput.parseDuration($0) })
            } catch let error as CoordinatorCallError {
                throw LockKeyOption.explained(error, hadKey: key != nil)
            }
        }
        try LockReleaseCommand.report(result, json: self.json, verb: "renewed")
    }
}

struct LockReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a lock taken with `acquire` (needs its holder key), or force one out (administrators).",
        discussion: """
            Only the holder may release: give the key `acquire` printed after the token \
            (--key, or $\(LockKeyOption.environmentVariable)). The token alone, which `lock status` \
            shows to anyone, is refused.

            --force releases the token's hold without its key, e.g. a lock left by a recipe \
            that died with a long lease. Only the coordinator's trusted user may (the login of \
            the `conductor serve` recorded in the state directory, or --broker with that user; \
            never through an agent's socket); anyone else is refused. The coordinator records \
            it in its audit trail (action lock.force_release, with who forced whom), and a \
            `conductor lock NAME -- COMMAND` that held it loses the lock at its next renewal \
            and kills COMMAND.

            Exit status: 0 released, 1 the token did not hold the lock (lease over, or released \
            already), 69 bus or coordinator unreachable, 65 refused by the coordinator (no or \
            the wrong holder key; --force by a user other than the trusted one).
            """
    )

    @Argument(help: "The lock's name.") var name: String
    @Argument(help: "The token `acquire` printed (or `lock status` shows, with --force).") var token: Int64
    @OptionGroup var key: LockKeyOption
    @Flag(name: .long, help: "Release it without its holder key: the coordinator's trusted user only, audited.") var force = false
    @Flag(name: .long, help: "Print {lock, token, lease_ms, held} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func validate() throws {
        if self.force, self.key.key != nil { throw ValidationError("--force releases without a key: give --key or --force, not both") }
    }

    func run() async throws {
        if self.force {
            let result = await self.coordinator.call(command: "lock release", login: .coordinator) { client in
                try await client.forceRelease(lock: self.name, token: self.token)
            }
            try Self.report(result, json: self.json, verb: "released by force")
            return
        }
        let key = self.key.resolved
        let result = await self.coordinator.call(command: "lock release") { client in
            do {
                return try await client.release(lock: self.name, token: self.token, holderKey: key)
            } catch let error as CoordinatorCallError {
                throw LockKeyOption.explained(error, hadKey: key != nil)
            }
        }
        try Self.report(result, json: self.json, verb: "released")
    }

    static func report(_ result: LockTokenResult, json: Bool, verb: String) throws {
        if json {
            PrimitiveOutput.json(try MeshValue(encoding: result))
        } else if result.held {
            print("\(verb) lock '\(result.lock)' (token \(result.token))")
        }
        if !result.held {
            if !json { PrimitiveOutput.warn("lock", "token \(result.token) does not hold lock '\(result.lock)' (its lease ran out, or it was released)") }
            throw ExitCode(1)
        }
    }
}

struct LockStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a lock's holders and waiters.",
        discussion: "Shows each holder's token and the bus user that acquired it, never its holder key. Exit status: 0 (held or not), 69 bus or coordinator unreachable, 65 refused by the coordinator."
    )

    @Argument(help: "The lock's name.") var name: String
    @Flag(name: .long, help: "Print {lock, limit, holders: [{token, holder, acquired_by, lease_remaining_ms}], waiters} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func run() async throws {
        let status = await self.coordinator.call(command: "lock status") { client in try await client.status(lock: self.name) }
        if self.json {
            PrimitiveOutput.json(try MeshValue(encoding: status))
            return
        }
        if status.holders.isEmpty { print("lock '\(status.lock)' is free") }
        for holder in status.holders {
            let user = holder.acquiredBy.map { " (bus user \($0))" } ?? ""
            print("held by \(holder.holder)\(user), token \(holder.token), lease \(Double(holder.leaseRemainingMilliseconds) / 1000) s left")
        }
        if status.waiters > 0 { print("\(status.waiters) waiting") }
    }
}
