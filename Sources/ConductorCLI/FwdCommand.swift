import ArgumentParser
import ConfigServer
import Conductor
import Foundation
import ProcessSupport

/// `conductor fwd DEPLOYMENT`: finishes what a crashed launch left half done.
struct FwdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fwd",
        abstract: "Roll a deployment forward: finish the launch a crash interrupted, starting and sending nothing twice.",
        discussion: """
            Reads the newest pending generation from the state store, finds the instances it \
            recorded (by handle or instance id) instead of starting new ones, and resends \
            unanswered jobs under their recorded ids (agents answer a job id they ran with \
            the stored result). Give --broker (and --agent-broker) the bus the instances use. \
            Without --broker, fwd brings back the crashed launch's embedded broker: same \
            loopback port, same users, same --bus-listen, amqps listener and --insecure (kept in \
            <state-dir>/buses/; flags given here win), so its instances reconnect by themselves; \
            like launch, it then serves until Ctrl-C and stops the instances, or exits at once \
            with --exit-when-configured. See docs/launch.md.

            Exit status: 0 when every member is configured, 1 otherwise.

            """
    )

    @Argument(help: "The deployment's name.")
    var deployment: String

    @Option(name: .long, help: "The environment it was launched in.")
    var env: String = "default"

    @OptionGroup var state: StateOptions

    @OptionGroup var bus: LaunchBusOptions

    @Option(name: .long, help: "Seconds a member may wait before it is reported blocked.")
    var waitBudget: Double = 30

    @Flag(name: .long, help: "With the embedded broker: stop the instances and exit once every member is configured or failed.")
    var exitWhenConfigured = false

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @OptionGroup var http: HTTPOptions

    @OptionGroup var insecure: InsecureOption

    func validate() throws {
        try self.insecure.check(bus: self.bus, http: self.http)
    }

    func run() async throws {
        let signals = SignalWatch()
        let store = try await self.state.openStore()
        // Nothing to do is said before any broker starts.
        guard let pending = try await store.pendingWork(deployment: self.deployment, environment: self.env), pending.generation != nil else {
            let known = try await store.deployment(self.deployment, environment: self.env) != nil
            FileHandle.standardError.write(Data(
                "conductor fwd: nothing to roll forward for \(self.deployment)@\(self.env)\(known ? "" : " (no such deployment in \((try? self.state.location())?.description ?? self.state.directory))")\n".utf8))
            throw ExitCode(1)
        }
        // Instances the crash left unstarted go on the launch's own addresses.
        let recorded = pending.generation.flatMap { try? JSONDecoder().decode(LaunchRequest.self, from: Data($0.document.utf8)) }
        let bus: LaunchBus
        do {
            bus = try await self.bus.start(
                record: EmbeddedBusRecord.path(stateDirectory: self.state.directory, deployment: self.deployment, environment: self.env),
                insecure: self.insecure.insecure)
        } catch {
            FileHandle.standardError.write(Data("conductor fwd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let json = self.json
        if bus.broker != nil, !json {
            let listening = LaunchBusOptions.listening(bus)
            say(bus.restored
                ? "restarted the launch's embedded broker on \(listening); its instances reconnect to it"
                : "embedded broker on \(listening) (no broker of this deployment was recorded, or its port is taken: instances started before the crash cannot reach it)")
        }
        // Phone-home instances keep their tokens (hashed in their handles): a new API answers them.
        let desk = self.http.enabled ? PhoneHomeDesk(store: store) : nil
        let server: ConfigServer?
        do {
            server = try await self.http.start(desk: desk)
        } catch {
            await bus.stop()
            FileHandle.standardError.write(Data("conductor fwd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if let server {
            let line = HTTPOptions.announcement(server)
            if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { say(line) }
        }
        let options = LaunchOptions(
            stateDirectory: self.state.directory, console: bus.console, agentBrokerURL: bus.agentURL,
            waitBudget: .milliseconds(Int64(self.waitBudget * 1000)), trustedUser: bus.trustedUser, busReach: bus.reach, accounts: bus.accounts)
        // The providers a launch has: `local` on the launch's own addresses, `agents` on this bus.
        let providers = LaunchCoordinator.standardProviders(recorded ?? LaunchRequest(file: "/"), console: bus.console, phoneHome: desk)
        let launcher = Launcher(store: store, providers: providers, options: options) { event in
            let line = event.description + "\n"
            if json { FileHandle.standardError.write(Data(line.utf8)) } else { FileHandle.standardOutput.write(Data(line.utf8)) }
        }
        let result: LaunchResult
        let deployment = self.deployment
        let environment = self.env
        let rolling = Task { try await launcher.rollForward(deployment: deployment, environment: environment) }
        let interruption = Task {
            guard let signal = await signals.wait() else { return Int32?.none }
            rolling.cancel()
            return signal
        }
        do {
            result = try await rolling.value
            interruption.cancel()
        } catch {
            interruption.cancel()
            if let signal = await interruption.value {
                // Interrupted: stop what this roll-forward and the crashed launch started.
                let stopped = (try? await launcher.terminate(deployment: deployment, environment: environment)) ?? []
                await server?.stop()
                await bus.stop()
                FileHandle.standardError.write(Data(
                    "conductor fwd: interrupted by \(SignalWatch.name(signal)): stopped \(stopped.count) instance(s); the deployment is recorded terminated\n".utf8))
                throw ExitCode(SignalWatch.exitCode(signal))
            }
            await server?.stop()
            await bus.stop()
            FileHandle.standardError.write(Data("conductor fwd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        say(json ? try LaunchCommand.json(result) : LaunchTable.render(result))
        // An embedded broker is the instances' only bus: serve on, as the launch would
        // have, and stop them at the end; with --broker they keep running on that bus.
        if bus.broker != nil {
            if !self.exitWhenConfigured {
                if !json { say("serving; Ctrl-C stops the instances and the broker") }
                _ = await signals.wait()
            }
            let stopped = (try? await launcher.terminate(deployment: self.deployment, environment: self.env)) ?? []
            if !json { say("stopped \(stopped.count) instance(s)") }
        }
        await server?.stop()
        await bus.stop()
        if !result.configured { throw ExitCode(1) }
    }
}
