import AMQPClient
import Foundation
import Mesh
import NIOCore
import Synchronization

extension CoordinatorCalling {
    /// The coordinator's live-agent registry (`live_agents`, docs/protocol.md).
    public func liveAgents(_ request: LiveAgentsRequest = LiveAgentsRequest(), timeout: Duration = .seconds(5)) async throws(CoordinatorCallError) -> LiveAgentList {
        let response = try await self.call(Coordinator.Method.liveAgents, arguments: request.arguments, timeout: timeout)
        do {
            return try LiveAgentList(arguments: response.arguments)
        } catch {
            throw CoordinatorCallError(.invalidReply, "\(Coordinator.Method.liveAgents): unreadable answer: \(error.message)")
        }
    }
}

/// Whom a fan-out (`conductor facts`, `conductor run --all/--where`) waits for.
public enum AgentDiscovery: Sendable {
    /// The coordinator's registry: ask these agents one by one and stop as soon as all of
    /// them answered; those that did not by the timeout went silent.
    /// `ignored`: agents whose heartbeats the coordinator does not take (not sent under
    /// their own login, on a bus where each agent has one): not asked.
    case registry(coordinator: AgentName, agents: [LiveAgent], ignored: Int)
    /// No usable registry (`reason` says why): broadcast and collect until the timeout, as
    /// without a coordinator.
    case broadcast(reason: String)

    /// `registry` or `broadcast`, for `--json`.
    public var source: String {
        switch self {
        case .registry: return "registry"
        case .broadcast: return "broadcast"
        }
    }

    /// Asks the coordinator of `scope` over the console's connection. Never throws: any
    /// failure is a reason to broadcast. With no coordinator the broker returns the request
    /// at once; a coordinator that does not answer costs at most `timeout`.
    public static func ask(_ console: MeshConsole, scope: String, timeout: Duration) async -> AgentDiscovery {
        let client: CoordinatorClient
        do {
            client = try await CoordinatorClient.using(console.connection, scope: scope)
        } catch {
            return .broadcast(reason: "cannot call the coordinator: \(error)")
        }
        let answer: Result<LiveAgentList, CoordinatorCallError>
        do {
            answer = .success(try await client.liveAgents(LiveAgentsRequest(attributes: false), timeout: timeout))
        } catch {
            answer = .failure(error)
        }
        await client.close()
        let list: LiveAgentList
        switch answer {
        case .success(let answered):
            list = answered
        case .failure(let error):
            switch error.code {
            case .noCoordinator: return .broadcast(reason: "no coordinator \(client.coordinator) on this bus")
            case .timeout: return .broadcast(reason: "\(client.coordinator) did not answer live_agents within \(timeout)")
            case .refused where error.exception?.code == .notFound:
                return .broadcast(reason: "\(client.coordinator) does not keep a registry (a coordinator older than live_agents)")
            default: return .broadcast(reason: "live_agents failed: \(error.message)")
            }
        }
        guard list.complete else {
            return .broadcast(
                reason: "\(client.coordinator) started listening to heartbeats \(list.listeningMilliseconds) ms ago; its registry is not complete yet")
        }
        return .registry(coordinator: client.coordinator, agents: list.agents, ignored: list.ignored)
    }
}

/// Why a collection of answers ended.
public enum CollectionEnd: String, Sendable, Codable, Hashable {
    /// Every agent asked (the coordinator's live set) answered, or its request came back
    /// undeliverable.
    case allLiveAnswered = "all_live_answered"
    /// Every agent named (`--agent`, `--role`) answered.
    case allNamedAnswered = "all_named_answered"
    /// `--expect N` agents answered.
    case expectedAnswered = "expected_answered"
    /// The timeout passed first.
    case timeout
}

/// The answers to a query sent to each agent of a known set (`MeshConsole.query(_:to:...)`).
public struct DirectQueryAnswers: Sendable {
    public var answers: QueryAnswers
    /// Asked, never answered before the timeout.
    public var silent: [AgentName]
    /// Asked, but the broker returned the request: the agent's request queue is gone (it
    /// stopped since its last heartbeat).
    public var unreachable: [AgentName]
    public var ended: CollectionEnd
}

extension MeshConsole {
    /// Sends `query` to each of `agents` directly (an agent asked directly always answers,
    /// with `[]` when nothing matches) and collects until every one of them answered, or
    /// `expectedAgents` answered with something, or `timeout` passed. The requests go out
    /// `mandatory` on a channel of their own, so one for an agent whose queue is gone comes
    /// back at once instead of being waited for.
    public func query(_ query: QueryRequest, to agents: [AgentName], timeout: Duration, expectedAgents: Int? = nil) async throws -> DirectQueryAnswers {
        let asked = Set(agents)
        let state = DirectCollectionBox(DirectCollection(pending: asked, expected: expectedAgents))
        if asked.isEmpty { return DirectQueryAnswers(answers: QueryAnswers([]), silent: [], unreachable: [], ended: .allLiveAnswered) }
        let replyQueue = try await self.declareReplyQueue()
        let consumer = try await self.consumeReplies(on: replyQueue)
        let requests: AMQPChannel
        do {
            requests = try await self.connection.openChannel()
        } catch {
            try? await consumer.cancel()
            throw error
        }
        var message = try MeshMessage(opcode: .queryRequest, encoding: query)
        let correlationID = "direct-" + UUID().uuidString.prefix(13).lowercased()
        message.correlationID = correlationID
        message.replyTo = replyQueue
        message.expiration = timeout
        // One body and one set of properties for every agent: only the routing key differs.
        let body = message.bodyBuffer()
        let properties = message.properties()
        let ended: CollectionEnd = await withTaskGroup(of: CollectionEnd?.self) { group in
            group.addTask {
                do {
                    for try await delivery in consumer {
                        guard delivery.properties.correlationId == correlationID,
                            let reply = try? MeshMessage(properties: delivery.properties, body: delivery.body), self.accepts(reply),
                            let agent = reply.agent.flatMap(AgentName.init)
                        else { continue }
                        if let end = state.value.withLock({ $0.replied(reply, from: agent) }) { return end }
                    }
                } catch {}
                return nil
            }
            let returns = requests.returns
            group.addTask {
                for await returned in returns where returned.properties.correlationId == correlationID {
                    guard let agent = AgentName(returned.routingKey) else { continue }
                    if let end = state.value.withLock({ $0.returned(agent) }) { return end }
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .timeout
            }
            for agent in agents {
                do {
                    _ = try requests.publish(body, exchange: QMF.directExchange, routingKey: agent.description, mandatory: true, properties: properties)
                } catch {
                    // Not sent: it cannot answer, and is named silent.
                    break
                }
            }
            var end: CollectionEnd = .timeout
            while let next = await group.next() {
                if let next {
                    end = next
                    break
                }
            }
            group.cancelAll()
            return end
        }
        try? await consumer.cancel()
        try? await requests.close()
        await self.deleteReplyQueue(replyQueue)
        let collected = state.value.withLock { $0 }
        return DirectQueryAnswers(
            answers: QueryAnswers(collected.replies), silent: collected.pending.sorted { $0.description < $1.description },
            unreachable: collected.unreachable, ended: ended)
    }
}

private final class DirectCollectionBox: Sendable {
    let value: Mutex<DirectCollection>
    init(_ collection: DirectCollection) { self.value = Mutex(collection) }
}

/// What a direct query has gathered so far.
private struct DirectCollection: Sendable {
    var pending: Set<AgentName>
    let expected: Int?
    var replies: [MeshMessage] = []
    var unreachable: [AgentName] = []
    /// Agents that answered with at least one object.
    var matched: Set<AgentName> = []

    init(pending: Set<AgentName>, expected: Int?) {
        self.pending = pending
        self.expected = expected
    }

    /// A reply from `agent`: its last one (not `partial`) takes it off the pending set.
    /// Returns why the collection ends, if it does now.
    mutating func replied(_ reply: MeshMessage, from agent: AgentName) -> CollectionEnd? {
        guard self.pending.contains(agent) else { return nil }
        self.replies.append(reply)
        if reply.body.listValue?.isEmpty == false { self.matched.insert(agent) }
        if !reply.partial { self.pending.remove(agent) }
        return self.end
    }

    mutating func returned(_ agent: AgentName) -> CollectionEnd? {
        guard self.pending.remove(agent) != nil else { return nil }
        self.unreachable.append(agent)
        return self.end
    }

    private var end: CollectionEnd? {
        if self.pending.isEmpty { return .allLiveAnswered }
        if let expected, self.matched.count >= expected { return .expectedAnswered }
        return nil
    }
}
