import AMQPClient
import AMQPProtocol
import Mesh

/// How an agent's durable queues (its job inbox `conductor.agent.<instance>.jobs` and its
/// request queue `conductor.agent.<instance>.requests`) are declared, by whoever declares
/// them: the coordinator provisioning them, the coordinator sending a job, an agent
/// declaring its own. Every declaration of a queue must carry the same arguments (a broker
/// refuses a second declare that differs with 406), so they are made here only.
///
/// On RabbitMQ they are quorum queues (`x-queue-type: quorum`): replicated over the
/// cluster's nodes, they outlive the node they were declared on, so jobs and requests
/// waiting for an agent survive a node going away, and the agent (or the coordinator)
/// consumes them again from any other node. A quorum queue must be durable, not exclusive
/// and not auto-delete; RabbitMQ 3.10 takes `x-message-ttl` on it. On any other broker
/// (the embedded one, which has a single node and keeps the argument's absence) they are
/// classic queues, as before.
public enum AgentQueues {
    /// What kind of queues the bus gets.
    public enum Flavour: String, Sendable, Hashable {
        /// Replicated queues (RabbitMQ).
        case quorum
        /// A single node's queues.
        case classic
    }

    /// The flavour for the broker `connection` is on: quorum when it announced itself as
    /// RabbitMQ (`product` in connection.start's server properties), classic otherwise.
    public static func flavour(of connection: AMQPConnection) -> Flavour {
        self.flavour(serverProperties: connection.serverProperties)
    }

    public static func flavour(serverProperties: FieldTable) -> Flavour {
        serverProperties["product"]?.stringValue == "RabbitMQ" ? .quorum : .classic
    }

    /// Requests left while the agent is away expire (each also carries its own expiration).
    public static let requestTTLMilliseconds: Int32 = 300_000

    /// Declares the job inbox: durable, so a job sent before the agent ever ran is kept.
    public static func declareInbox(_ agent: AgentName, on channel: AMQPChannel, flavour: Flavour) async throws {
        switch flavour {
        case .quorum:
            try await channel.queueDeclare(name: agent.jobInbox, durable: true, arguments: ["x-queue-type": .string("quorum")])
        case .classic:
            try await channel.queueDeclare(name: agent.jobInbox, durable: true)
        }
    }

    /// Declares the request queue (provisioned for a confined agent): requests expire after
    /// `requestTTLMilliseconds`. A classic one is not durable (requests are answered now or
    /// never); a quorum one must be.
    public static func declareRequestQueue(_ agent: AgentName, on channel: AMQPChannel, flavour: Flavour) async throws {
        switch flavour {
        case .quorum:
            try await channel.queueDeclare(
                name: agent.requestQueue, durable: true,
                arguments: ["x-queue-type": .string("quorum"), "x-message-ttl": .int32(self.requestTTLMilliseconds)])
        case .classic:
            try await channel.queueDeclare(name: agent.requestQueue, arguments: ["x-message-ttl": .int32(self.requestTTLMilliseconds)])
        }
    }
}
