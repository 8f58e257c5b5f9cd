import ArgumentParser
import Conductor
import Foundation

/// `conductor terminate DEPLOYMENT`: stops its instances and keeps the record.
struct TerminateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terminate",
        abstract: "Stop every instance of a deployment; the record and its history stay.",
        discussion: """
            With a coordinator reachable (`conductor serve` recorded in the state directory, or \
            --coordinator), asks it: it stops the instances and stops re-configuring the \
            deployment, and keeps serving. Otherwise needs no bus: local instances are found by \
            their recorded handle; with --broker (the bus the instances used), the agents' own \
            logins on it are deleted too (an embedded bus's went with it). See docs/launch.md.

            Exit status: 0 when the instances are stopped, 1 otherwise (unknown deployment, \
            a coordinator that does not answer).
            """
    )

    @Argument(help: "The deployment's name.")
    var deployment: String

    @Option(name: .long, help: "The environment it was launched in.")
    var env: String = "default"

    @OptionGroup var state: StateOptions

    @OptionGroup var coordinator: CoordinatorOptions

    @OptionGroup var bus: LaunchBusOptions

    @Flag(name: .long, help: "Print the members stopped as JSON.")
    var json = false

    func run() async throws {
        let stopped: [String]
        var through: String?
        do {
            if let remote = try await self.reachableCoordinator() {
                defer { Task { await remote.close() } }
                stopped = try await remote.client.terminate(deployment: self.deployment, environment: self.env).stopped
                through = "\(remote.client.coordinator)" + (remote.pid.map { " (pid \($0))" } ?? "")
            } else {
                let store = try await self.state.openStore()
                // The providers stop the instances; a bus given is where their logins go.
                var options = LaunchOptions(stateDirectory: self.state.directory, console: .init(), agentBrokerURL: "")
                var bus: LaunchBus?
                if self.bus.broker != nil {
                    let started = try await self.bus.start(insecure: false)
                    options.console = started.console
                    options.accounts = started.accounts
                    bus = started
                }
                let launcher = Launcher(store: store, providers: [LocalProvider()], options: options)
                do {
                    stopped = try await launcher.terminate(deployment: self.deployment, environment: self.env)
                    await bus?.stop()
                } catch {
                    await bus?.stop()
                    throw error
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("conductor terminate: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if self.json {
            print(try LaunchCommand.json(Terminated(deployment: self.deployment, environment: self.env, stopped: stopped, coordinator: through)))
            return
        }
        print(
            "terminated \(self.deployment)@\(self.env): \(stopped.count) instance(s) stopped"
                + (stopped.isEmpty ? "" : " (" + stopped.joined(separator: ", ") + ")") + (through.map { " by the coordinator \($0)" } ?? ""))
    }

    struct Terminated: Encodable {
        var deployment: String
        var environment: String
        /// The members whose instances were stopped.
        var stopped: [String]
        /// The coordinator that stopped them, if one did.
        var coordinator: String?
    }

    /// --coordinator (must answer), else the live coordinator recorded in the state directory.
    func reachableCoordinator() async throws -> RemoteCoordinator? {
        if let url = self.coordinator.coordinator {
            guard let found = await RemoteCoordinator.probe(url, scope: self.coordinator.scope, timeout: .seconds(3)) else {
                FileHandle.standardError.write(Data("conductor terminate: no coordinator \(self.coordinator.scope) answered on \(redacted(url))\n".utf8))
                throw ExitCode(1)
            }
            return found
        }
        if let record = CoordinatorRecord.live(stateDirectory: self.state.directory) {
            guard let found = await RemoteCoordinator.probe(record.broker, scope: record.scope, timeout: .seconds(5)) else {
                FileHandle.standardError.write(Data("conductor terminate: the coordinator recorded in \(self.state.directory) (pid \(record.pid)) does not answer\n".utf8))
                throw ExitCode(1)
            }
            return found
        }
        return nil
    }
}
