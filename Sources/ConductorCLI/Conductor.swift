import ArgumentParser

/// `conductor`: the one binary of the mesh. Each subcommand lives in a file of its own.
@main
struct Conductor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conductor",
        abstract: "A message-bus orchestration mesh over AMQP 0-9-1.",
        discussion: """
            One binary for every role: the embedded AMQP broker, the node agent, the \
            coordinator, and the commands recipes and scripts use.
            """,
        version: "0.1.0",
        subcommands: Conductor.allSubcommands
    )
}
