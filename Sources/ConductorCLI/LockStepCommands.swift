import ArgumentParser
import Foundation
import Mesh
import MeshClient

// The two-step form of `conductor lock` (acquire, renew, release) and `status`: for recipes
// that cannot wrap their work in one command (docs/primitives.md, "The two-step form").

struct LockAcquireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acquire",
        abstract: "Acquire a lock for a later `release` (prints the fencing token).",
        discussion: """
            For recipes that cannot wrap the work in one command. The lock is held by its \
            lease alone: it outlives this process, and ends at `conductor lock release NAME \
            TOKEN` or when --ttl passes without `conductor lock renew NAME TOKEN`, whichever \
            comes first. Choose a --ttl longer than the work; nothing kills the work when the \
            lease ends, so prefer `conductor lock NAME -- COMMAND` when you can.

            Prints the token (or JSON with --json). Exit status: 0 acquired, 75 not acquired \
            within --wait, 69 bus or coordinator unreachable, 65 refused by the coordinator \
            (the lock is in use with another --limit, which it names).
            """
    )

    @Argument(help: "The lock's name.") var name: String
    @Option(name: .long, help: "Lease length (default 10m).") var ttl: String = "10m"
    @Option(name: .long, help: "How long to wait for the lock (default 5m; 0: fail at once).") var wait: String = "5m"
    @Option(name: .long, help: "Up to N holders at once (default 1).") var limit: Int = 1
    @Flag(name: .long, help: "Print {lock, token, lease_ms, limit} as JSON.") var json = false
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
            print(grant.token)
        }
    }
}

struct LockRenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Extend the lease of a lock taken with `acquire`.",
        discussion: "Exit status: 0 renewed, 1 the token no longer holds the lock, 69 bus or coordinator unreachable, 65 refused by the coordinator."
    )

    @Argument(help: "The lock's name.") var name: String
    @Argument(help: "The token `acquire` printed.") var token: Int64
    @Option(name: .long, help: "New lease length from now (default: the one it was acquired with).") var ttl: String?
    @Flag(name: .long, help: "Print {lock, token, lease_ms, held} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func validate() throws {
        if let ttl, PrimitiveOutput.parseDuration(ttl, allowZero: false) == nil { throw ValidationError("--ttl must be a duration like 10m, not '\(ttl)'") }
    }

    func run() async throws {
        let result = await self.coordinator.call(command: "lock renew") { client in
            try await client.renew(lock: self.name, token: self.token, ttl: self.ttl.flatMap { PrimitiveOutput.parseDuration($0) })
        }
        try LockReleaseCommand.report(result, json: self.json, verb: "renewed")
    }
}

struct LockReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a lock taken with `acquire`.",
        discussion: "Exit status: 0 released, 1 the token did not hold the lock (lease over, or released already), 69 bus or coordinator unreachable, 65 refused by the coordinator."
    )

    @Argument(help: "The lock's name.") var name: String
    @Argument(help: "The token `acquire` printed.") var token: Int64
    @Flag(name: .long, help: "Print {lock, token, lease_ms, held} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func run() async throws {
        let result = await self.coordinator.call(command: "lock release") { client in
            try await client.release(lock: self.name, token: self.token)
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
        discussion: "Exit status: 0 (held or not), 69 bus or coordinator unreachable, 65 refused by the coordinator."
    )

    @Argument(help: "The lock's name.") var name: String
    @Flag(name: .long, help: "Print {lock, limit, holders: [{token, holder, lease_remaining_ms}], waiters} as JSON.") var json = false
    @OptionGroup var coordinator: PrimitiveBusOptions

    func run() async throws {
        let status = await self.coordinator.call(command: "lock status") { client in try await client.status(lock: self.name) }
        if self.json {
            PrimitiveOutput.json(try MeshValue(encoding: status))
            return
        }
        if status.holders.isEmpty { print("lock '\(status.lock)' is free") }
        for holder in status.holders {
            print("held by \(holder.holder), token \(holder.token), lease \(Double(holder.leaseRemainingMilliseconds) / 1000) s left")
        }
        if status.waiters > 0 { print("\(status.waiters) waiting") }
    }
}
