import Agent
import ArgumentParser
import Foundation
import Mesh

/// Where an event lives: the deployment (`--deployment` or `$CONDUCTOR_DEPLOYMENT`, which
/// jobs get), or everywhere with `--global`, which is also where a shell outside any job
/// signals and waits.
struct EventScopeOptions: ParsableArguments {
    @Flag(name: .long, help: "A global event, not scoped to a deployment (the default outside a job, when there is no deployment).")
    var global = false

    @Option(name: .long, help: "The deployment the event belongs to (default: $CONDUCTOR_DEPLOYMENT).")
    var deployment: String?

    static let globalScope = "global"

    func resolved() throws -> String {
        if self.global {
            guard self.deployment == nil else { throw ValidationError("--global and --deployment exclude each other") }
            return Self.globalScope
        }
        // A shell outside any job has no deployment: its events are the global ones.
        guard let scope = self.deployment ?? ProcessInfo.processInfo.environment["CONDUCTOR_DEPLOYMENT"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            return Self.globalScope
        }
        do { try LockNames.validate(scope, what: "deployment") } catch { throw ValidationError(error.message) }
        return scope
    }
}

/// `conductor signal`: records that this node reached an event.
struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal",
        abstract: "Signal an event (latched) that `conductor wait` waits for.",
        discussion: """
            The coordinator keeps the signal (a wait that starts later returns at once) and \
            counts it once per node, for barriers (`wait --count N`). A node signalling again \
            replaces its data. The node is --node, else $CONDUCTOR_INSTANCE_ID, else the host name.

            Exit status: 0 recorded, 69 bus or coordinator unreachable, 65 refused by the \
            coordinator, 64 invalid arguments.
            """
    )

    @Argument(help: "The event's name (letters, digits and - _ . : / @).")
    var event: String

    @Option(name: .long, help: "JSON data to attach, printed by `conductor wait` (at most 64 KiB).")
    var data: String?

    @Option(name: .long, help: "The signalling node's name (default: $CONDUCTOR_INSTANCE_ID, else the host name).")
    var node: String?

    @OptionGroup var scope: EventScopeOptions

    @Flag(name: .long, help: "Print the event's state (every signal so far) as JSON.")
    var json = false

    @OptionGroup var coordinator: PrimitiveBusOptions

    func validate() throws {
        do { try LockNames.validate(self.event, what: "event name") } catch { throw ValidationError(error.message) }
        _ = try self.scope.resolved()
        if let data { _ = try Self.parseData(data) }
    }

    static func parseData(_ text: String) throws -> MeshValue {
        do {
            return try MeshValue(json: Array(text.utf8))
        } catch {
            throw ValidationError("--data is not valid JSON: \(error.message) (a string needs quotes: --data '\"text\"')")
        }
    }

    static func nodeName(_ explicit: String?) -> String {
        explicit ?? ProcessInfo.processInfo.environment["CONDUCTOR_INSTANCE_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.hostName
    }

    func run() async throws {
        let request = SignalRequest(event: self.event, scope: try self.scope.resolved(), node: Self.nodeName(self.node), data: try self.data.map(Self.parseData))
        do { try request.validate() } catch { throw ValidationError(error.message) }
        let state = await self.coordinator.call(command: "signal") { client in try await client.signal(request) }
        if self.json {
            PrimitiveOutput.json(try MeshValue(encoding: state))
        } else {
            print("signalled '\(state.event)' (\(state.scope)) as \(request.node): \(state.signals.count) node(s) so far")
        }
    }
}
