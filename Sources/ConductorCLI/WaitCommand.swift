import Agent
import ArgumentParser
import Foundation
import Mesh

/// `conductor wait`: blocks until an event was signalled (by N distinct nodes).
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until an event is signalled (by --count distinct nodes), or time out.",
        discussion: """
            Events are latched: a signal sent before the wait counts. With --count N it is a \
            barrier: it returns once N distinct nodes signalled. On success it prints the \
            event's data (the latest signal's; one line per node with --count > 1), or JSON \
            with --json. On timeout it exits 75 and says who signalled and, when the \
            coordinator knows the deployment's instances, who did not (else how many are \
            still missing). A timeout is never reported as success.

            Exit status: 0 happened, 75 timed out, 69 bus or coordinator unreachable, 65 \
            refused by the coordinator, 64 invalid arguments.
            """
    )

    @Argument(help: "The event's name.")
    var event: String

    @Option(name: .long, help: "A barrier: wait for this many distinct nodes (default 1).")
    var count: Int = 1

    @Option(name: .long, help: "Give up after this long: 30s, 5m, 0 (just look) (default 10m).")
    var timeout: String = "10m"

    @OptionGroup var scope: EventScopeOptions

    @Flag(name: .long, help: "Print {event, scope, satisfied, signals: [{node, data, at}], missing} as JSON (also on timeout).")
    var json = false

    @OptionGroup var coordinator: PrimitiveBusOptions

    func validate() throws {
        do { try LockNames.validate(self.event, what: "event name") } catch { throw ValidationError(error.message) }
        _ = try self.scope.resolved()
        guard (1...100_000).contains(self.count) else { throw ValidationError("--count must be 1...100000") }
        guard PrimitiveOutput.parseDuration(self.timeout) != nil else { throw ValidationError("--timeout must be a duration like 0, 30s or 10m, not '\(self.timeout)'") }
    }

    func run() async throws {
        let timeout = PrimitiveOutput.parseDuration(self.timeout)!
        let request = WaitRequest(event: self.event, scope: try self.scope.resolved(), count: self.count, timeoutMilliseconds: timeout.wholeMilliseconds)
        let state = await self.coordinator.call(command: "wait") { client in try await client.wait(request) }
        if self.json {
            PrimitiveOutput.json(try MeshValue(encoding: state))
        } else if state.satisfied {
            if self.count == 1 {
                let latest = state.signals.max { $0.at < $1.at }
                if let data = latest?.data { print(Self.text(data)) }
            } else {
                for signal in state.signals { print("\(signal.node)\t\(signal.data.map(Self.text) ?? "")") }
            }
        }
        guard state.satisfied else {
            let who = state.signals.isEmpty ? "nobody signalled" : "signalled by \(state.signals.map(\.node).joined(separator: ", "))"
            var missing = ""
            if let names = state.missing, !names.isEmpty {
                missing = "; not signalled: \(names.joined(separator: ", "))"
            } else if self.count > state.signals.count {
                missing = "; \(self.count - state.signals.count) more node(s) needed"
            }
            PrimitiveOutput.fail("wait", "'\(self.event)' (\(state.scope)) not reached within \(self.timeout): \(who) (\(state.signals.count) of \(self.count))\(missing)", code: PrimitiveExit.timedOut)
        }
    }

    /// A string prints bare (usable in $(...)); anything else as JSON.
    static func text(_ value: MeshValue) -> String {
        if case .string(let text) = value { return text }
        return String(decoding: value.jsonBytes, as: UTF8.self)
    }
}
