import AMQPClient
import AMQPProtocol
import Broker
import Foundation
import Mesh
import MeshClient
import TestSupport
import Testing

/// The agents' queues are quorum queues on RabbitMQ and classic ones on our broker, and
/// every declarer passes the same arguments (docs/protocol.md, "An agent's queues").
@Suite(.timeLimit(.minutes(1)))
struct AgentQueuesTests {
    @Test func theFlavourFollowsTheBrokersProduct() {
        #expect(AgentQueues.flavour(serverProperties: ["product": .string("RabbitMQ")]) == .quorum)
        #expect(AgentQueues.flavour(serverProperties: ["product": .string("Conductor")]) == .classic)
        #expect(AgentQueues.flavour(serverProperties: [:]) == .classic)
    }

    /// Provisioned, then declared again as a job send does, then probed with the exact
    /// arguments: a differing declare would be refused (406) and close the channel.
    @Test(arguments: [false, true]) func provisionedQueuesAreDeclaredTheSameWayEveryTime(rabbitMQ: Bool) async throws {
        if rabbitMQ, RabbitMQEnvironment.url == nil { return }
        let broker = rabbitMQ ? nil : try await TestBroker.start()
        let url = try #require(rabbitMQ ? RabbitMQEnvironment.url : broker?.url)
        let agent = try AgentName(instance: "queues-\(UUID().uuidString.prefix(8).lowercased())")
        let console = try await MeshConsole.connect(try AMQPConnectionConfiguration(url: url))
        let flavour = AgentQueues.flavour(of: console.connection)
        #expect(flavour == (rabbitMQ ? .quorum : .classic))
        try await console.provisionQueues(for: agent)
        try await console.provisionQueues(for: agent)
        let channel = try await console.connection.openChannel()
        let quorum: FieldTable = ["x-queue-type": .string("quorum")]
        if rabbitMQ {
            // The same arguments are accepted again; another type would be a 406.
            try await channel.queueDeclare(name: agent.jobInbox, durable: true, arguments: quorum)
            try await channel.queueDeclare(
                name: agent.requestQueue, durable: true,
                arguments: ["x-queue-type": .string("quorum"), "x-message-ttl": .int32(AgentQueues.requestTTLMilliseconds)])
            let refused = await #expect(throws: AMQPError.self) { try await channel.queueDeclare(name: agent.jobInbox, durable: true) }
            #expect(refused?.replyCode == 406)
        } else {
            try await channel.queueDeclare(name: agent.jobInbox, durable: true)
            try await channel.queueDeclare(name: agent.requestQueue, arguments: ["x-message-ttl": .int32(AgentQueues.requestTTLMilliseconds)])
            // Our broker takes x-queue-type and ignores it (docs/broker.md): one node, classic queues.
            try await channel.queueDeclare(name: agent.jobInbox, durable: true, arguments: quorum)
        }
        try await console.removeQueues(for: agent)
        try await console.close()
        try await broker?.stop()
    }
}
