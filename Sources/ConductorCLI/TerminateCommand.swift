import ArgumentParser
import Conductor
import Foundation

/// `conductor terminate DEPLOYMENT`: stops its instances and keeps the record.
struct TerminateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terminate",
        abstract: "Stop every instance of a deployment; the record and its history stay.",
        discussion: "Needs no bus: local instances are found by their recorded handle. Also stops the background coordinator of `launch --detach`. See docs/launch.md."
    )

    @Argument(help: "The deployment's name.")
    var deployment: String

    @Option(name: .long, help: "The environment it was launched in.")
    var env: String = "default"

    @OptionGroup var state: StateOptions

    func run() async throws {
        let store = try self.state.openStore()
        // No bus is used: terminate talks to providers only.
        let options = LaunchOptions(stateDirectory: self.state.directory, console: .init(), agentBrokerURL: "")
        let launcher = Launcher(store: store, providers: [LocalProvider()], options: options)
        do {
            let stopped = try await launcher.terminate(deployment: self.deployment, environment: self.env)
            print("terminated \(self.deployment)@\(self.env): \(stopped.count) instance(s) stopped\(stopped.isEmpty ? "" : " (" + stopped.joined(separator: ", ") + ")")")
        } catch {
            FileHandle.standardError.write(Data("conductor terminate: \(error)\n".utf8))
            throw ExitCode(1)
        }
        // Then the background coordinator of `launch --detach`, with its broker.
        let path = CoordinatorRecord.path(stateDirectory: self.state.directory, deployment: self.deployment, environment: self.env)
        if let record = CoordinatorRecord.read(path) {
            if CoordinatorRecord.isServing(record.pid) {
                guard await CoordinatorRecord.stop(record.pid) else {
                    FileHandle.standardError.write(Data("conductor terminate: the background coordinator (pid \(record.pid)) did not stop\n".utf8))
                    throw ExitCode(1)
                }
                print("stopped the background coordinator (pid \(record.pid))")
            }
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
