import ArgumentParser
import Conductor
import Foundation

/// `conductor fwd DEPLOYMENT`: finishes what a crashed launch left half done.
struct FwdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fwd",
        abstract: "Roll a deployment forward: finish the launch a crash interrupted, starting and sending nothing twice.",
        discussion: """
            Reads the newest pending generation from the state store, finds the instances it \
            recorded (by handle or instance id) instead of starting new ones, and resends \
            unanswered jobs under their recorded ids (agents answer a job id they ran with \
            the stored result). Give --broker the bus the instances use; without it an \
            embedded broker is started, which instances of a crashed embedded launch cannot \
            reach (they are then reported blocked). See docs/launch.md.
            """
    )

    @Argument(help: "The deployment's name.")
    var deployment: String

    @Option(name: .long, help: "The environment it was launched in.")
    var env: String = "default"

    @OptionGroup var state: StateOptions

    @Option(name: .long, help: "AMQP URL of the bus the instances use; default: an embedded broker.")
    var broker: String?

    @Option(name: .long, help: "Seconds a member may wait before it is reported blocked.")
    var waitBudget: Double = 30

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let store = try self.state.openStore()
        let bus = try await LaunchBus.start(broker: self.broker)
        let json = self.json
        let options = LaunchOptions(
            stateDirectory: self.state.directory, console: bus.console, agentBrokerURL: bus.agentURL,
            waitBudget: .milliseconds(Int64(self.waitBudget * 1000)))
        let launcher = Launcher(store: store, providers: [LocalProvider()], options: options) { event in
            let line = event.description + "\n"
            if json { FileHandle.standardError.write(Data(line.utf8)) } else { FileHandle.standardOutput.write(Data(line.utf8)) }
        }
        let result: LaunchResult
        do {
            result = try await launcher.rollForward(deployment: self.deployment, environment: self.env)
        } catch {
            await bus.stop()
            FileHandle.standardError.write(Data("conductor fwd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        await bus.stop()
        say(json ? try LaunchCommand.json(result) : LaunchTable.render(result))
        if !result.configured { throw ExitCode(1) }
    }
}
