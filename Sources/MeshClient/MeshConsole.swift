import AMQPClient
import AMQPProtocol
import Foundation
import Logging
import Mesh
import NIOCore
import NIOPosix

/// The console side of docs/protocol.md: asks agents questions and sends them work.
/// Used by `conductor facts`, the tests and the benchmarks. Each request gets its own
/// exclusive reply queue, so concurrent requests never see each other's answers.
public final class MeshConsole: Sendable {
    public let connection: AMQPConnection
    private let channel: AMQPChannel
    /// Put in `user_id` of `run` and `apply_job`: the broker checks it is our login.
    public let userID: String
    /// Signs `run` and `apply_job` requests, for agents that check (`RequestSignature`).
    public let signer: RequestSigner?
    /// Whose answers count (`AnswerCheck`).
    public let answers: AnswerCheck
    private let logger: Logger

    private init(connection: AMQPConnection, channel: AMQPChannel, userID: String, signer: RequestSigner?, answers: AnswerCheck, logger: Logger) {
        self.connection = connection
        self.channel = channel
        self.userID = userID
        self.signer = signer
        self.answers = answers
        self.logger = logger
    }

    public static func connect(
        _ configuration: AMQPConnectionConfiguration,
        signer: RequestSigner? = nil,
        answers: AnswerCheck = .any,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "conductor.console", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> MeshConsole {
        let connection = try await AMQPConnection.connect(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            let channel = try await QMFExchanges.ensure(QMFExchanges.both, on: connection)
            return MeshConsole(connection: connection, channel: channel, userID: configuration.username, signer: signer, answers: answers, logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
    }

    public func close() async throws {
        try await self.connection.close()
    }

    // MARK: - Who answered

    /// Whether `message` counts as an answer from an agent (from `expected` when given).
    /// With `.ownLogins` it must name its agent and carry that agent's own login as
    /// `user_id`, which the broker checked was the publisher's; anything else is dropped
    /// and logged, so one node cannot speak for another.
    public func accepts(_ message: MeshMessage, from expected: AgentName? = nil) -> Bool {
        guard case .ownLogins = self.answers else { return true }
        guard let claimed = message.agent.flatMap(AgentName.init), claimed.brokerUser == message.userID, expected.map({ $0 == claimed }) ?? true else {
            self.logger.warning(
                "answer ignored: not from the agent it names", metadata: [
                    "agent": "\(message.agent ?? "-")", "user_id": "\(message.userID ?? "-")", "expected": "\(expected?.description ?? "-")",
                    "opcode": "\(message.opcode.rawValue)",
                ])
            return false
        }
        return true
    }

    // MARK: - Agents' queues

    /// Declares and binds an agent's job inbox and request queue, for an agent whose login
    /// may not (docs/protocol.md, "An agent's queues"). Idempotent.
    /// Quorum queues on RabbitMQ, classic ones elsewhere (`AgentQueues`).
    public func provisionQueues(for agent: AgentName) async throws {
        let flavour = AgentQueues.flavour(of: self.connection)
        try await AgentQueues.declareInbox(agent, on: self.channel, flavour: flavour)
        try await self.channel.queueBind(queue: agent.jobInbox, exchange: QMF.directExchange, routingKey: agent.jobInbox)
        // Requests left while the agent is away expire (each also carries its own expiration).
        try await AgentQueues.declareRequestQueue(agent, on: self.channel, flavour: flavour)
        try await self.channel.queueBind(queue: agent.requestQueue, exchange: QMF.directExchange, routingKey: agent.description)
        try await self.channel.queueBind(queue: agent.requestQueue, exchange: QMF.topicExchange, routingKey: QMF.Subject.agentLocate)
        try await self.channel.queueBind(queue: agent.requestQueue, exchange: QMF.topicExchange, routingKey: QMF.Subject.query)
    }

    public static let requestQueueTTLMilliseconds: Int32 = AgentQueues.requestTTLMilliseconds

    /// Deletes what `provisionQueues` made (jobs still waiting are dropped).
    public func removeQueues(for agent: AgentName) async throws {
        _ = try await self.channel.queueDelete(name: agent.requestQueue)
        _ = try await self.channel.queueDelete(name: agent.jobInbox)
    }

    // MARK: - Requests and replies

    /// An exclusive queue for replies; it lives as long as this console. Named by the
    /// client (`conductor.reply.<uuid>`, as `CoordinatorClient`'s) rather than by the
    /// server, so that when the connection fails over to another node the recovery declares
    /// it again under the same name: answers sent to it from then on arrive.
    public func declareReplyQueue() async throws -> String {
        try await self.channel.queueDeclare(name: "conductor.reply.\(UUID().uuidString.lowercased())", exclusive: true, autoDelete: true).name
    }

    /// Deletes a reply queue of `declareReplyQueue()` once its collection is over.
    public func deleteReplyQueue(_ name: String) async {
        _ = try? await self.channel.queueDelete(name: name)
    }

    /// Publishes a mesh message as it is (set `replyTo`/`correlationID` first).
    public func publish(_ message: MeshMessage, exchange: String, routingKey: String) throws {
        _ = try self.channel.publish(message.bodyBuffer(), exchange: exchange, routingKey: routingKey, properties: message.properties())
    }

    /// `publish`, first waiting (bounded by `recoveryWaitTimeout`) while the connection
    /// moves to another node, instead of failing.
    func publishWhenConnected(_ message: MeshMessage, exchange: String, routingKey: String) async throws {
        _ = try await self.channel.publishWhenConnected(message.bodyBuffer(), exchange: exchange, routingKey: routingKey, properties: message.properties())
    }

    /// Replies on `replyQueue` with this correlation id, until `timeout` passes or `done`
    /// says the collection is complete. Replies already waiting in the queue count.
    ///
    /// `resend`: how to send an idempotent request again (a job, which the agent runs once
    /// per job id and answers again from its record). When the connection recovers (moved to
    /// another node) before the collection is complete, the request is sent again: answers
    /// published while the reply queue was gone are lost with it.
    public func collect(
        replyQueue: String, correlationID: String, from agent: AgentName? = nil, timeout: Duration, resend: FailoverResend? = nil,
        until done: @escaping @Sendable ([MeshMessage]) -> Bool = { _ in false }
    ) async throws -> [MeshMessage] {
        // Listening for failovers before looking at the count: none falls between.
        let recoveries = resend.map { _ in self.connection.recoveryEvents() }
        let consumer = try await self.channel.consume(queue: replyQueue, noAck: true)
        if let resend, let sentAt = resend.sentAt, self.connection.recoveryCount != sentAt {
            self.logger.notice("the bus connection moved to another node since the request was sent; sending it again", metadata: ["correlation_id": "\(correlationID)"])
            try? await resend.send()
        }
        return await self.collect(consumer, correlationID: correlationID, from: agent, timeout: timeout, resend: resend?.send, recoveries: recoveries, until: done)
    }

    /// Every message arriving on `replyQueue` (see `declareReplyQueue()`), for a caller that
    /// matches the replies of many requests on one queue itself (`RemoteRunner`). Cancel
    /// the consumer when done.
    public func consumeReplies(on replyQueue: String) async throws -> AMQPConsumer {
        try await self.channel.consume(queue: replyQueue, noAck: true)
    }

    /// Sends one request and collects its replies: the reply queue exists and is consumed
    /// before the request is published, so no answer can be missed.
    ///
    /// `idempotent`: the request may be sent twice (a query, a locate, a refresh): it is
    /// sent again when the connection fails over to another node before the collection is
    /// complete. Other requests are not; their answers still arrive if sent once the reply
    /// queue is back.
    public func request(
        _ message: MeshMessage, exchange: String, routingKey: String, from agent: AgentName? = nil, timeout: Duration,
        idempotent: Bool = false,
        until done: @escaping @Sendable ([MeshMessage]) -> Bool = { _ in false }
    ) async throws -> [MeshMessage] {
        let replyQueue = try await self.declareReplyQueue()
        let recoveries = idempotent ? self.connection.recoveryEvents() : nil
        let consumer = try await self.channel.consume(queue: replyQueue, noAck: true)
        var message = message
        let correlationID = message.correlationID ?? UUID().uuidString
        message.correlationID = correlationID
        message.replyTo = replyQueue
        do {
            try await self.publishWhenConnected(message, exchange: exchange, routingKey: routingKey)
        } catch {
            try? await consumer.cancel()
            _ = try? await self.channel.queueDelete(name: replyQueue)
            throw error
        }
        let resend: (@Sendable () async throws -> Void)? = idempotent ? { @Sendable [message] in try await self.publishWhenConnected(message, exchange: exchange, routingKey: routingKey) } : nil
        let replies = await self.collect(consumer, correlationID: correlationID, from: agent, timeout: timeout, resend: resend, recoveries: recoveries, until: done)
        _ = try? await self.channel.queueDelete(name: replyQueue)
        return replies
    }

    /// `recoveries` (with `resend`): the connection's failovers, listened to from before
    /// the request was sent.
    private func collect(
        _ consumer: AMQPConsumer, correlationID: String, from agent: AgentName?, timeout: Duration,
        resend: (@Sendable () async throws -> Void)? = nil, recoveries: AsyncStream<Int>? = nil, until done: @escaping @Sendable ([MeshMessage]) -> Bool
    ) async -> [MeshMessage] {
        let collected = Collected()
        await withTaskGroup(of: Void.self) { group in
            if let resend, let recoveries {
                group.addTask {
                    // Runs until the collection ends (the group cancels it) or the connection closes.
                    for await _ in recoveries {
                        if Task.isCancelled { return }
                        self.logger.notice("the bus connection moved to another node; sending the request again", metadata: ["correlation_id": "\(correlationID)"])
                        do {
                            try await resend()
                        } catch {
                            self.logger.warning("request not sent again after the failover", metadata: ["correlation_id": "\(correlationID)", "error": "\(error)"])
                        }
                    }
                    // The connection closed for good: nothing more can arrive; wait for the timeout.
                    try? await Task.sleep(for: timeout)
                }
            }
            group.addTask {
                do {
                    for try await delivery in consumer {
                        guard let message = try? MeshMessage(properties: delivery.properties, body: delivery.body),
                            message.correlationID == correlationID, self.accepts(message, from: agent)
                        else { continue }
                        if collected.append(message, done: done) { return }
                    }
                } catch {}
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            _ = await group.next()
            group.cancelAll()
        }
        try? await consumer.cancel()
        return collected.messages
    }

    // MARK: - Questions

    /// A fact query. To one agent (direct) it ends at the agent's last (non-partial) answer;
    /// broadcast it ends at `timeout`, or once `expectedAgents` distinct agents answered.
    public func query(_ query: QueryRequest, agent: AgentName? = nil, timeout: Duration, expectedAgents: Int? = nil) async throws -> QueryAnswers {
        let message = try MeshMessage(opcode: .queryRequest, encoding: query)
        let target: (exchange: String, routingKey: String) = agent.map { (QMF.directExchange, $0.description) } ?? (QMF.topicExchange, QMF.Subject.query)
        let expected = agent == nil ? expectedAgents : 1
        let replies = try await self.request(message, exchange: target.exchange, routingKey: target.routingKey, timeout: timeout, idempotent: true) { replies in
            guard let expected else { return false }
            return Set(replies.filter { !$0.partial }.compactMap(\.agent)).count >= expected
        }
        return QueryAnswers(replies)
    }

    /// Agents whose attributes match `predicate` (every agent when nil), as they answer
    /// `_agent_locate_request` before `timeout` (or until `expectedAgents` answered).
    public func locate(where predicate: Mesh.Predicate? = nil, timeout: Duration, expectedAgents: Int? = nil) async throws -> [AgentInfo] {
        let message = try MeshMessage(opcode: .agentLocateRequest, encoding: AgentLocateRequest(where: predicate))
        let replies = try await self.request(message, exchange: QMF.topicExchange, routingKey: QMF.Subject.agentLocate, timeout: timeout, idempotent: true) { replies in
            expectedAgents.map { replies.count >= $0 } ?? false
        }
        return replies.filter { $0.opcode == .agentLocateResponse }.compactMap { try? $0.decodeBody(AgentInfo.self) }
    }

    /// Calls a method on one agent (direct). Returns its `_method_response` or
    /// `_exception`, or nil when nothing came back before `timeout`.
    public func call(_ method: MethodRequest, on agent: AgentName, timeout: Duration) async throws -> MeshMessage? {
        var message = try MeshMessage(opcode: .methodRequest, encoding: method)
        message.userID = self.userID
        message.expiration = timeout
        message.deadline = RequestSigner.now() + timeout.wholeMilliseconds
        if method.methodName == MeshMethod.run || method.methodName == MeshMethod.applyJob {
            self.signer?.sign(&message, agent: agent.description, method: method.methodName, expiresAt: RequestSigner.now() + timeout.wholeMilliseconds + 60_000)
        }
        // A refresh may be asked twice; a `run` may not (and its signature's nonce would be refused as a replay).
        let idempotent = method.methodName == MeshMethod.refresh
        let replies = try await self.request(
            message, exchange: QMF.directExchange, routingKey: agent.description, from: agent, timeout: timeout, idempotent: idempotent
        ) { !$0.isEmpty }
        return replies.first
    }

    /// Publishes a configuration job to the agent's durable inbox (declared and bound here
    /// first, so a job sent before the agent ever ran is kept). Collect the answer with
    /// `collect(replyQueue:correlationID:...)`.
    /// The agent runs a job once per job id, so sending it again (after a failover, see
    /// `collect(resendAfterFailover:)`) gets the recorded answer, not a second run.
    public func sendJob(_ job: ConfigurationJob, to agent: AgentName, replyQueue: String, correlationID: String = UUID().uuidString) async throws {
        try await AgentQueues.declareInbox(agent, on: self.channel, flavour: AgentQueues.flavour(of: self.connection))
        try await self.channel.queueBind(queue: agent.jobInbox, exchange: QMF.directExchange, routingKey: agent.jobInbox)
        let request = try MethodRequest(methodName: MeshMethod.applyJob, encoding: job)
        var message = try MeshMessage(opcode: .methodRequest, encoding: request)
        message.userID = self.userID
        message.persistent = true
        message.replyTo = replyQueue
        message.correlationID = correlationID
        self.signer?.sign(&message, agent: agent.description, method: MeshMethod.applyJob, expiresAt: RequestSigner.now() + RequestSigner.jobLifetime)
        try await self.publishWhenConnected(message, exchange: QMF.directExchange, routingKey: agent.jobInbox)
    }

    /// Deletes an agent's job inbox (a decommissioned agent); returns the jobs dropped.
    @discardableResult
    public func deleteJobInbox(of agent: AgentName) async throws -> UInt32 {
        try await self.channel.queueDelete(name: agent.jobInbox)
    }

    /// Starts watching heartbeats (every agent's). Heartbeats sent from now on are kept
    /// until read with `HeartbeatWatch.next(timeout:matching:)`.
    public func watchHeartbeats() async throws -> HeartbeatWatch {
        let queue = try await self.declareReplyQueue()
        try await self.channel.queueBind(queue: queue, exchange: QMF.topicExchange, routingKey: QMF.Subject.allHeartbeats)
        return HeartbeatWatch(queue: queue, channel: self.channel)
    }

    /// Every agent's heartbeats as they arrive, pushed by the broker: a consumer on an
    /// exclusive queue bound to the heartbeat subject. Heartbeats sent from now on are kept
    /// until read. Cancel it (or close the console) when done.
    public func heartbeats() async throws -> Heartbeats {
        let queue = try await self.declareReplyQueue()
        try await self.channel.queueBind(queue: queue, exchange: QMF.topicExchange, routingKey: QMF.Subject.allHeartbeats)
        return Heartbeats(consumer: try await self.channel.consume(queue: queue, noAck: true), console: self)
    }
}

/// Heartbeats consumed from a console's queue (`MeshConsole.heartbeats()`), decoded; other
/// messages are skipped. Ends when cancelled; throws when the connection fails for good.
public struct Heartbeats: AsyncSequence, Sendable {
    public typealias Element = AgentInfo
    let consumer: AMQPConsumer
    let console: MeshConsole

    public struct AsyncIterator: AsyncIteratorProtocol {
        var deliveries: AMQPConsumer.AsyncIterator
        let console: MeshConsole

        public mutating func next() async throws -> AgentInfo? {
            while let delivery = try await self.deliveries.next() {
                if let message = try? MeshMessage(properties: delivery.properties, body: delivery.body),
                    message.opcode == .agentHeartbeatIndication, let info = try? message.decodeBody(AgentInfo.self),
                    self.console.answers == .any || message.agent == info.name.description, self.console.accepts(message)
                {
                    return info
                }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(deliveries: self.consumer.makeAsyncIterator(), console: self.console) }

    /// Stops the consumer; the sequence ends after the heartbeats already received.
    public func cancel() async throws { try await self.consumer.cancel() }
}

/// The answers to a query, by agent.
public struct QueryAnswers: Sendable {
    /// Every object returned, in arrival order.
    public var objects: [ObjectData] = []
    /// Agents that answered with an `_exception`, and what they said.
    public var exceptions: [(agent: String, exception: ExceptionBody)] = []
    /// Every reply as received (other `_what` kinds: decode their bodies yourself).
    public var replies: [MeshMessage]

    init(_ replies: [MeshMessage]) {
        self.replies = replies
        for reply in replies {
            switch reply.opcode {
            case .queryResponse where reply.content == QMF.Content.data:
                self.objects += (try? ObjectData.list(reply.body)) ?? []
            case .exception:
                if let exception = try? reply.decodeBody(ExceptionBody.self) { self.exceptions.append((reply.agent ?? "?", exception)) }
            default:
                break
            }
        }
    }

    /// Names of the agents that answered at all.
    public var agents: Set<String> { Set(self.replies.compactMap(\.agent)) }
}

/// Heartbeats arriving on a console's queue.
public struct HeartbeatWatch: Sendable {
    public let queue: String
    let channel: AMQPChannel

    /// The first heartbeat that satisfies `matching` before `timeout`, or nil. Heartbeats
    /// read and not matching are dropped.
    public func next(timeout: Duration, matching: @escaping @Sendable (AgentInfo) -> Bool = { _ in true }) async throws -> AgentInfo? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let delivery = try await self.channel.get(queue: self.queue, noAck: true) {
                if let message = try? MeshMessage(properties: delivery.properties, body: delivery.body),
                    message.opcode == .agentHeartbeatIndication,
                    let info = try? message.decodeBody(AgentInfo.self), matching(info)
                {
                    return info
                }
                continue
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}

/// How `MeshConsole.collect` sends an idempotent request again after a failover.
public struct FailoverResend: Sendable {
    /// `connection.recoveryCount` read before the request was first sent: a failover
    /// completed between that send and the collection counts too (the send may have been
    /// lost with the old node). Nil: only failovers during the collection count.
    public var sentAt: Int?
    public var send: @Sendable () async throws -> Void

    public init(sentAt: Int?, _ send: @escaping @Sendable () async throws -> Void) {
        self.sentAt = sentAt
        self.send = send
    }
}

/// Replies gathered by the collecting task, read after it ends.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [MeshMessage] = []

    /// Adds a reply; true when `done` says the collection is complete.
    func append(_ message: MeshMessage, done: ([MeshMessage]) -> Bool) -> Bool {
        self.lock.withLock {
            self.storage.append(message)
            return done(self.storage)
        }
    }

    var messages: [MeshMessage] { self.lock.withLock { self.storage } }
}

/// Whose answers a console takes (`MeshConsole.accepts`).
public enum AnswerCheck: Sendable, Hashable {
    /// Every well-formed answer, whoever sent it (agents sharing one login).
    case any
    /// Only an agent's own: `user_id` must be the agent's login (`AgentName.brokerUser`).
    case ownLogins
}
