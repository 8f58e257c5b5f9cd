import ArgumentParser

// Placeholder until the broker lands; the broker work replaces this file.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded AMQP 0-9-1 broker."
    )

    func run() async throws {
        throw ValidationError("the broker is not built yet")
    }
}
