import AMQPClient
import AMQPProtocol
import Foundation
import Logging
import Mesh
import MeshClient
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The node agent: heartbeats, answers locate and query requests, runs `run` and
/// configuration jobs, on the bus that docs/protocol.md describes.
///
/// `init` resolves the agent's identity (instance id, and a new epoch: constructing the
/// service counts as a start). Everything else happens in `run()`: connecting (retried
/// until the broker answers), declaring the exchanges and queues, consuming, timers.
/// On graceful shutdown it stops taking work, lets a running job finish for up to
/// `shutdownGracePeriod`, then kills it and reports it `interrupted`.
public final class AgentService: Service, Sendable {
    public let configuration: AgentConfiguration
    public let name: AgentName
    public let epoch: Int64
    public let facts: FactStore

    private let state: AgentStateStore
    private let responder: AgentResponder
    /// Signed `run` requests admitted, on disk: a replay within its expiry is refused, also
    /// after a restart.
    private let runNonces: RunNonceStore
    /// `user_id` of everything the agent sends (`AgentConfiguration.loginUser`).
    private let loginUser: String?
    private let executor: JobExecutor
    private let clock: any Clock<Duration>
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup

    public init(
        configuration: AgentConfiguration,
        logger: Logger,
        clock: any Clock<Duration> = ContinuousClock(),
        executor: JobExecutor = JobExecutor(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(AgentError) {
        self.configuration = configuration
        self.state = try AgentStateStore(directory: configuration.stateDirectory)
        let instance = try self.state.instanceID(explicit: configuration.instanceID, environment: environment)
        do {
            self.name = try AgentName(instance: instance)
        } catch {
            throw AgentError(.invalidInstance, "instance id '\(instance)' cannot name an agent: \(error.message)")
        }
        self.epoch = try self.state.nextEpoch()
        // Before any request can arrive: a restart must not forget what it admitted.
        self.runNonces = try RunNonceStore(directory: configuration.stateDirectory)
        self.loginUser = configuration.loginUser
        self.responder = AgentResponder(
            name: self.name, epoch: self.epoch, trustedUser: configuration.trustedUser, trustedKeys: configuration.trustedKeys,
            maximumResponseBytes: configuration.maximumResponseBytes)
        self.facts = FactStore(sources: configuration.factSources, statisticsInterval: configuration.refreshInterval, propertiesInterval: configuration.refreshInterval * 20)
        self.executor = executor
        self.clock = clock
        self.eventLoopGroup = eventLoopGroup
        var logger = logger
        logger[metadataKey: "agent_name"] = "\(self.name)"
        logger[metadataKey: "agent_epoch"] = "\(self.epoch)"
        self.logger = logger
    }

    public func run() async throws {
        let shutdown = ShutdownSignal()
        try await withGracefulShutdownHandler {
            try await self.serve(shutdown)
        } onGracefulShutdown: {
            shutdown.trigger()
        }
    }

    // MARK: - Lifecycle

    private func serve(_ shutdown: ShutdownSignal) async throws {
        await self.facts.refresh()
        if self.runNonces.unreadableLines > 0 {
            self.logger.warning(
                "unreadable lines skipped in the admitted run nonces (a torn last line after a crash is expected)",
                metadata: ["path": "\(self.runNonces.path)", "lines": "\(self.runNonces.unreadableLines)"])
        }
        if self.loginUser == nil {
            self.logger.notice("this agent logs in with a certificate (EXTERNAL) and cannot tell its broker user: what it sends carries no user_id")
        }
        guard let (connection, requests, jobs, requestConsumer, jobConsumer, queues) = try await self.attach(shutdown) else { return }
        let localSocket = await self.startLocalSocket(connection)
        self.logger.info(
            "agent ready",
            metadata: [
                "queues": "\(queues.rawValue)", "request_queue": "\(queues == .provisioned ? self.name.requestQueue : "exclusive, server-named")",
                "job_inbox": "\(self.name.jobInbox)", "trusted_user": "\(self.configuration.trustedUser)", "user_id": "\(self.loginUser ?? "-")",
                "broker": "\(self.configuration.broker.redactedURL)",
            ])
        if self.configuration.trustedUser == "guest" {
            self.logger.warning("jobs and run requests are accepted from 'guest': for local development only")
        }
        let lost = await withTaskGroup(of: Void.self) { background in
            background.addTask { await self.heartbeatLoop(requests) }
            background.addTask { await self.facts.run(clock: self.clock) }
            let lost = await withTaskGroup(of: Bool.self) { work in
                // A loop that ends by itself (not cancelled) means the bus stopped delivering.
                // A loop that stopped because shutdown began (it saw a delivery after the trigger) is not a lost bus.
                work.addTask { await self.requestLoop(requestConsumer, channel: requests, shutdown); return !Task.isCancelled && !shutdown.isTriggered }
                work.addTask { await self.jobLoop(jobConsumer, channel: jobs, shutdown); return !Task.isCancelled && !shutdown.isTriggered }
                work.addTask { await shutdown.wait(); return false }
                let lost = await work.next() ?? false
                if lost { shutdown.trigger() }
                // Stops waiting for deliveries; running work is shielded and finishes.
                work.cancelAll()
                return lost
            }
            background.cancelAll()
            return lost
        }
        await localSocket?.stop()
        try? await connection.close()
        if lost {
            throw AgentError(.busLost, "the bus stopped delivering (a channel was closed or recovery gave up)")
        }
        self.logger.info("agent stopped")
    }

    /// How the agent's queues came to be.
    enum QueueSetup: String, Sendable {
        /// The coordinator made them for this agent's confined login: nothing is declared.
        case provisioned
        /// The agent declares exchanges, inbox and its own request queue (a login with the
        /// rights to, as before per-agent users).
        case own
    }

    /// Connects and sets up the channels, queues and consumers. A connection lost before
    /// that is done (the broker went away just after the handshake, say a launch killed at
    /// that moment) is the same as a broker not reachable yet: connect again. Nil when
    /// shutdown came first.
    private func attach(
        _ shutdown: ShutdownSignal
    ) async throws -> (AMQPConnection, requests: AMQPChannel, jobs: AMQPChannel, AMQPConsumer, AMQPConsumer, QueueSetup)? {
        var refusedSince: ContinuousClock.Instant?
        while let connection = try await self.connect(shutdown, refusedSince: &refusedSince) {
            do {
                let (requests, requestQueue, queues) = try await self.setUpQueues(connection)
                let jobs = try await connection.openChannel()
                try await jobs.basicQos(prefetchCount: 1)
                let requestConsumer = try await requests.consume(queue: requestQueue, noAck: true)
                let jobConsumer = try await jobs.consume(queue: self.name.jobInbox)
                return (connection, requests, jobs, requestConsumer, jobConsumer, queues)
            } catch let error as AMQPError where error.code == .connectionClosed {
                self.logger.warning("lost the bus while setting up, connecting again", metadata: ["error": "\(error)"])
                try? await connection.close()
                await self.sleep(for: .milliseconds(100), unless: shutdown)
            } catch where !connection.isConnected {
                // Whatever the failed step reported (a closed channel, an I/O error), the
                // connection is gone under it: the broker went away, as above.
                self.logger.warning("lost the bus while setting up, connecting again", metadata: ["error": "\(error)"])
                try? await connection.close()
                await self.sleep(for: .milliseconds(100), unless: shutdown)
            } catch let error as AgentError where error.code == .queuesMissing && (refusedSince ?? .now).duration(to: .now) < self.configuration.refusalPatience {
                // As for a refused login: the coordinator may be provisioning them again.
                refusedSince = refusedSince ?? .now
                self.logger.warning("this agent's queues are not there yet, retrying", metadata: ["error": "\(error)"])
                try? await connection.close()
                await self.sleep(for: .seconds(1), unless: shutdown)
            } catch {
                try? await connection.close()
                throw error
            }
        }
        return nil
    }

    /// Connects, retrying with backoff while the broker is unreachable (the agent may start
    /// before the broker). A refused login is retried for `refusalPatience` (its coordinator
    /// may be making it again), then final. Nil when shutdown came first.
    private func connect(_ shutdown: ShutdownSignal, refusedSince: inout ContinuousClock.Instant?) async throws -> AMQPConnection? {
        var attempt = 0
        while !shutdown.isTriggered && !Task.isCancelled {
            do {
                return try await AMQPConnection.connect(self.configuration.broker, eventLoopGroup: self.eventLoopGroup, logger: self.logger)
            } catch let error as AMQPError where error.code == .invalidURL {
                self.logger.error("cannot connect to the broker", metadata: ["error": "\(error)"])
                throw error
            } catch let error as AMQPError where error.code == .authenticationFailed {
                // A login made for this agent may be being made again (a coordinator's fwd
                // brought its bus back): patience, for a while; then it is final.
                let since = refusedSince ?? .now
                refusedSince = since
                guard since.duration(to: .now) < self.configuration.refusalPatience else {
                    self.logger.error("cannot connect to the broker", metadata: ["error": "\(error)"])
                    throw error
                }
                self.logger.warning("the broker refused this agent's login, retrying (a coordinator may be making it again)", metadata: ["error": "\(error)"])
                await self.sleep(for: .seconds(1), unless: shutdown)
            } catch {
                let delay = min(Duration.milliseconds(100) * (1 << min(attempt, 6)), .seconds(5))
                attempt += 1
                self.logger.warning("broker not reachable, retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                await self.sleep(for: delay, unless: shutdown)
            }
        }
        return nil
    }

    /// The recipes' fast path to the coordinator (LocalSocketServer); an agent without it
    /// still works, so a failure to bind is a warning.
    private func startLocalSocket(_ connection: AMQPConnection) async -> LocalSocketServer? {
        do {
            return try await LocalSocketServer.start(directory: self.configuration.stateDirectory, connection: connection, logger: self.logger, eventLoopGroup: self.eventLoopGroup)
        } catch {
            self.logger.warning("local socket not started", metadata: ["directory": "\(self.configuration.stateDirectory)", "error": "\(error)"])
            return nil
        }
    }

    /// The channel for requests, the request queue to consume, and how the queues came to
    /// be. A passive declare finds `conductor.agent.<instance>.requests` when the coordinator
    /// provisioned it for a confined login (which may not declare or bind anything): then
    /// nothing is declared. Its 404 (which closes that channel) means the agent declares
    /// its own on a new channel, as docs/protocol.md says. Decided on every connect; the
    /// client's own recovery then replays only what was declared, so a provisioned agent
    /// re-declares nothing.
    private func setUpQueues(_ connection: AMQPConnection) async throws -> (AMQPChannel, queue: String, QueueSetup) {
        let probe = try await connection.openChannel()
        do {
            try await probe.queueDeclare(name: self.name.requestQueue, passive: true)
            self.logger.info("using the provisioned queues", metadata: ["request_queue": "\(self.name.requestQueue)", "job_inbox": "\(self.name.jobInbox)"])
            return (probe, self.name.requestQueue, .provisioned)
        } catch let error as AMQPError where error.replyCode == ReplyCode.notFound {
            self.logger.info("no provisioned request queue; declaring this agent's own queues", metadata: ["missing": "\(self.name.requestQueue)"])
        }
        let channel = try await connection.openChannel()
        do {
            return (channel, try await self.declareTopology(channel), .own)
        } catch let error as AMQPError where error.replyCode == ReplyCode.accessRefused {
            throw AgentError(
                .queuesMissing,
                "the request queue \(self.name.requestQueue) was not provisioned, and this login (\(self.configuration.broker.username)) may not declare the agent's own queues: \(error.message)")
        }
    }

    /// Exchanges and queues exactly as docs/protocol.md says. Returns the request queue's name.
    private func declareTopology(_ channel: AMQPChannel) async throws -> String {
        try await channel.exchangeDeclare(name: QMF.topicExchange, type: "topic", durable: true)
        try await channel.exchangeDeclare(name: QMF.directExchange, type: "direct", durable: true)
        let inbox = self.name.jobInbox
        try await AgentQueues.declareInbox(self.name, on: channel, flavour: AgentQueues.flavour(of: channel.connection))
        try await channel.queueBind(queue: inbox, exchange: QMF.directExchange, routingKey: inbox)
        let requests = try await channel.queueDeclare(exclusive: true, autoDelete: true).name
        try await channel.queueBind(queue: requests, exchange: QMF.directExchange, routingKey: self.name.description)
        try await channel.queueBind(queue: requests, exchange: QMF.topicExchange, routingKey: QMF.Subject.agentLocate)
        try await channel.queueBind(queue: requests, exchange: QMF.topicExchange, routingKey: QMF.Subject.query)
        return requests
    }

    private func sleep(for duration: Duration, unless shutdown: ShutdownSignal) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.clock.sleep(for: duration, tolerance: nil) }
            group.addTask { await shutdown.wait() }
            _ = await group.next()
            group.cancelAll()
        }
    }

    // MARK: - Loops

    private func heartbeatLoop(_ channel: AMQPChannel) async {
        while !Task.isCancelled {
            let info = self.responder.agentInfo(await self.facts.snapshot, heartbeatSeconds: self.configuration.heartbeatSeconds)
            if let body = try? MeshValue(encoding: info) {
                var message = MeshMessage(opcode: .agentHeartbeatIndication, body: body, agent: self.name.description)
                message.expiration = info.heartbeatExpiration
                do {
                    try self.send(message, exchange: QMF.topicExchange, routingKey: self.name.heartbeatSubject, channel: channel)
                } catch {
                    self.logger.debug("heartbeat not sent", metadata: ["error": "\(error)"])
                }
            }
            do {
                try await self.clock.sleep(for: self.configuration.heartbeatInterval, tolerance: nil)
            } catch {
                return
            }
        }
    }

    /// Locate, query and direct method requests. Each is handled in its own child task so a
    /// long `run` does not hold up queries; the child is shielded from the loop's
    /// cancellation so a running command is not killed by "stop taking requests".
    private func requestLoop(_ consumer: AMQPConsumer, channel: AMQPChannel, _ shutdown: ShutdownSignal) async {
        await withTaskGroup(of: Void.self) { group in
            do {
                for try await delivery in consumer {
                    if shutdown.isTriggered { break }
                    group.addTask { await Self.shielded { await self.handle(delivery, channel: channel, fromInbox: false, shutdown) } }
                }
            } catch {
                if !Task.isCancelled { self.logger.error("request consumer failed", metadata: ["error": "\(error)"]) }
            }
        }
    }

    /// Jobs, one at a time, acked only once their result is recorded and sent.
    private func jobLoop(_ consumer: AMQPConsumer, channel: AMQPChannel, _ shutdown: ShutdownSignal) async {
        do {
            for try await delivery in consumer {
                if shutdown.isTriggered {
                    // Not started: back to the inbox for the next start.
                    try? delivery.reject(requeue: true)
                    break
                }
                await Self.shielded { await self.handle(delivery, channel: channel, fromInbox: true, shutdown) }
            }
        } catch {
            if !Task.isCancelled { self.logger.error("job consumer failed", metadata: ["error": "\(error)"]) }
        }
    }

    /// Runs `work` in a task that the caller's cancellation does not reach, and waits for it.
    /// Used so that shutting down the consumers never kills a running job mid-way; the
    /// job's own interruption (after the grace period) is decided inside.
    private static func shielded(_ work: @escaping @Sendable () async -> Void) async {
        await Task { await work() }.value
    }

    // MARK: - Requests

    private func handle(_ delivery: AMQPMessage, channel: AMQPChannel, fromInbox: Bool, _ shutdown: ShutdownSignal) async {
        defer {
            if fromInbox { try? delivery.ack() }
        }
        let request: MeshMessage
        do {
            request = try MeshMessage(properties: delivery.properties, body: delivery.body)
        } catch {
            self.logger.warning("unreadable message dropped", metadata: ["error": "\(error)", "routing_key": "\(delivery.routingKey)"])
            if let replyTo = delivery.properties.replyTo {
                var reply = MeshMessage(opcode: .exception, body: error.exception.value, agent: self.name.description, correlationID: delivery.properties.correlationId)
                reply.method = .response
                self.publish(reply, to: replyTo, channel: channel)
            }
            return
        }
        var logger = self.logger
        if let correlation = request.correlationID { logger[metadataKey: "correlation_id"] = "\(correlation)" }
        let broadcast = delivery.exchange == QMF.topicExchange
        let snapshot = await self.facts.snapshot
        let info = self.responder.agentInfo(snapshot, heartbeatSeconds: self.configuration.heartbeatSeconds)
        let decision = self.responder.decide(request, broadcast: broadcast, snapshot: snapshot, info: info)
        switch decision {
        case .ignore(let reason):
            logger.info("request ignored", metadata: ["reason": "\(reason)"])
        case .reply(let replies):
            for reply in replies {
                if reply.opcode == .exception {
                    let level: Logger.Level = reply.body[path: "_values.error_code"] == .int(403) ? .warning : .info
                    logger.log(level: level, "request refused", metadata: ["user_id": "\(request.userID ?? "-")", "error": "\(reply.body[path: "_values.error_text"] ?? .null)"])
                }
                self.publish(reply, to: request.replyTo!, channel: channel)
            }
        case .refresh:
            let snapshot = await self.facts.refresh()
            self.publish(request.response(opcode: .methodResponse, body: .map(["_arguments": .map(["values": .map(snapshot.values)])]), agent: self.name), to: request.replyTo!, channel: channel)
        case .run(let run):
            if !self.responder.trustedKeys.isEmpty,
                let nonce = request.extraHeaders[RequestSignature.nonceHeader]?.stringValue,
                let expiresAt = request.extraHeaders[RequestSignature.expiresHeader]?.intValue
            {
                let verified = RequestSignature.Verified(nonce: nonce, expiresAt: expiresAt)
                let refusal: (ExceptionBody, log: String)?
                switch self.runNonces.admit(verified, now: RequestSigner.now()) {
                case .admitted:
                    refusal = nil
                case .replayed:
                    refusal = (ExceptionBody(code: .forbidden, text: "'run' is refused: it was seen before (a replay)"), "a replayed run request (nonce \(nonce))")
                case .full(let count):
                    refusal = (
                        ExceptionBody(
                            code: .unavailable,
                            text: "'run' is refused for now: this agent remembers \(count) signed run requests that have not expired, as many as it keeps against replays; send it again later"),
                        "the admitted run nonces are full (\(count))")
                case .notRecorded(let reason):
                    refusal = (
                        ExceptionBody(code: .internalError, text: "'run' is refused: this agent could not record it against replays (\(reason)); it was not run"),
                        "run nonce not recorded: \(reason)")
                }
                if let (body, reason) = refusal {
                    logger.warning("request refused", metadata: ["user_id": "\(request.userID ?? "-")", "error": "\(reason)"])
                    self.publish(request.exceptionResponse(body, agent: self.name), to: request.replyTo!, channel: channel)
                    return
                }
            }
            logger.info("run started", metadata: ["user_id": "\(request.userID ?? "-")", "command": "\(run.command.argv)"])
            let result = await self.interruptible(shutdown) { await self.executor.run(run) }
            logger.info("run finished", metadata: ["exit_code": "\(result.exitCode)", "timed_out": "\(result.timedOut)"])
            // Built as a tree (the JSON round trips of `publishResult` cost more than `true`'s spawn).
            if let replyTo = request.replyTo {
                self.publish(request.response(opcode: .methodResponse, body: .map(["_arguments": .map(result.arguments)]), agent: self.name), to: replyTo, channel: channel)
            }
        case .applyJob(let job):
            await self.applyJob(job, request: request, channel: channel, logger: logger, shutdown)
        }
    }

    private func applyJob(_ job: ConfigurationJob, request: MeshMessage, channel: AMQPChannel, logger: Logger, _ shutdown: ShutdownSignal) async {
        var logger = logger
        logger[metadataKey: "job_id"] = "\(job.jobID)"
        if var stored = self.state.finishedJob(job.jobID) {
            logger.info("job already finished here; sending its stored result", metadata: ["status": "\(stored.status.rawValue)"])
            stored.replayed = true
            self.publishResult(stored, for: request, channel: channel)
            return
        }
        logger.info("job started", metadata: ["services": "\(job.services.map(\.name))", "deployment": "\(job.deployment ?? "-")"])
        let result = await self.interruptible(shutdown) { await self.executor.apply(job) }
        do {
            try self.state.recordFinishedJob(result)
        } catch {
            logger.error("job result not recorded; a redelivery will run it again", metadata: ["error": "\(error)"])
        }
        logger.log(level: result.status == .succeeded ? .info : .warning, "job finished", metadata: ["status": "\(result.status.rawValue)"])
        self.publishResult(result, for: request, channel: channel)
        let event = EventData(
            schemaID: SchemaClassID(package: MeshSchema.package, className: "job_finished", type: QMF.Content.event),
            values: ["job_id": .string(job.jobID), "status": .string(result.status.rawValue)],
            timestamp: AgentResponder.nanoseconds(Date()), severity: result.status == .succeeded ? 6 : 4)
        if let body = try? MeshValue(encoding: event) {
            let message = MeshMessage(opcode: .dataIndication, body: body, agent: self.name.description, content: QMF.Content.event)
            try? self.send(message, exchange: QMF.topicExchange, routingKey: QMF.Subject.event(package: MeshSchema.package, class: "job_finished"), channel: channel)
        }
    }

    /// Runs `work`; once shutdown has been asked for and the grace period has passed, the
    /// work is cancelled (its process killed) and whatever it returns then is the result.
    private func interruptible<Result: Sendable>(_ shutdown: ShutdownSignal, _ work: @escaping @Sendable () async -> Result) async -> Result {
        let grace = self.configuration.shutdownGracePeriod
        return await withTaskGroup(of: Result?.self) { group in
            group.addTask { await work() }
            group.addTask {
                await shutdown.wait()
                try? await self.clock.sleep(for: grace, tolerance: nil)
                return nil
            }
            while let next = await group.next() {
                if let result = next {
                    group.cancelAll()
                    return result
                }
                self.logger.warning("shutdown grace period over; interrupting the running work")
                group.cancelAll()
            }
            preconditionFailure("the work task always returns a result")
        }
    }

    private func publishResult(_ result: some Encodable, for request: MeshMessage, channel: AMQPChannel) {
        guard let replyTo = request.replyTo else { return }
        do {
            let response = try MethodResponse(encoding: result)
            self.publish(request.response(opcode: .methodResponse, body: try MeshValue(encoding: response), agent: self.name), to: replyTo, channel: channel)
        } catch {
            self.publish(request.exceptionResponse(ExceptionBody(code: .internalError, text: "cannot encode the result: \(error)"), agent: self.name), to: replyTo, channel: channel)
        }
    }

    private func publish(_ message: MeshMessage, to replyTo: String, channel: AMQPChannel) {
        do {
            try self.send(message, exchange: "", routingKey: replyTo, channel: channel)
        } catch {
            self.logger.warning("reply not sent", metadata: ["reply_to": "\(replyTo)", "error": "\(error)"])
        }
    }

    /// Everything the agent sends goes out here, with `user_id` = its login: the broker
    /// refuses any other, so a console can tell this agent's answers from anyone else's.
    private func send(_ message: MeshMessage, exchange: String, routingKey: String, channel: AMQPChannel) throws(AMQPError) {
        var message = message
        message.userID = self.loginUser
        _ = try channel.publish(message.bodyBuffer(), exchange: exchange, routingKey: routingKey, properties: message.properties())
    }
}

extension AgentService {
    /// Runs the agent as this process's main service until SIGTERM or SIGINT, then stops
    /// it gracefully (`conductor agent`).
    public func runUntilTerminated(logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: [.init(service: self)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
