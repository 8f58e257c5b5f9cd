import AMQPClient
@testable import Conductor
import Mesh
import Testing

/// An agent's own login goes into every node's URL of a cluster, so the agent can log in
/// wherever it moves.
@Test func anAgentsLoginGoesIntoEveryURLOfACluster() throws {
    let login = AgentIdentity(agent: try AgentName(instance: "web-1"), password: "p,w/d")
    let url = login.url(from: "amqp://conductor:c@rmq1:5672/%2F,amqp://conductor:c@rmq2:5672/%2F,amqp://rmq3:5672/%2F")
    #expect(url == "amqp://agent.web-1:p%2Cw%2Fd@rmq1:5672/%2F,amqp://agent.web-1:p%2Cw%2Fd@rmq2:5672/%2F,amqp://agent.web-1:p%2Cw%2Fd@rmq3:5672/%2F")
    let configuration = try AMQPConnectionConfiguration(url: url)
    #expect(configuration.username == "agent.web-1" && configuration.password == "p,w/d")
    #expect(configuration.endpoints.map(\.host) == ["rmq1", "rmq2", "rmq3"])
    // One URL reads as before.
    #expect(login.url(from: "amqp://conductor:c@rmq1:5672/%2F") == "amqp://agent.web-1:p%2Cw%2Fd@rmq1:5672/%2F")
}
