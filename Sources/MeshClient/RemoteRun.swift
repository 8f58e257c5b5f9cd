import AMQPClient
import Foundation
import Mesh

/// Who a remote run is for.
public enum RemoteRunTarget: Sendable {
    /// One node named by the caller; `label` is shown next to it (e.g. the member `web[1]`).
    public struct Node: Hashable, Sendable {
        public var name: AgentName
        public var label: String?

        public init(name: AgentName, label: String? = nil) {
            self.name = name
            self.label = label
        }
    }

    /// Every agent whose host facts match (every agent when nil), as `conductor facts
    /// --where` sees them. Nobody can know how many exist, so discovery lasts the whole
    /// discovery timeout, or until `expect` agents were found.
    case matching(Mesh.Predicate?, expect: Int?)
    /// Exactly these agents: discovery ends as soon as all of them answered, and those that
    /// did not are reported `not_found`.
    case nodes([Node])
}

/// Runs one command on many agents over one reply queue: discovery, then batches of
/// concurrent `run` requests, every reply matched to its node by correlation id, every
/// node that did not answer named. The bookkeeping is `RemoteRunPlan`; this is its I/O.
public struct RemoteRunner: Sendable {
    public struct Settings: Sendable {
        public var batch: RunBatchSize
        public var batchWait: Duration
        public var discoveryTimeout: Duration
        /// Added to the command's timeout for the reply's deadline: the agent kills the
        /// command at its timeout and still needs to answer.
        public var replyGrace: Duration
        public var maximumOutputBytes: Int
        /// For a `.matching` target: the agents the coordinator's registry says are live
        /// (`AgentDiscovery.registry`). Discovery then asks each of them directly and ends
        /// as soon as all answered; those that did not are reported `silent`. Nil: broadcast
        /// and wait the whole discovery timeout (or for `expect`).
        public var liveAgents: [AgentName]?

        public init(
            batch: RunBatchSize = .all, batchWait: Duration = .zero, discoveryTimeout: Duration = .seconds(2),
            replyGrace: Duration = .seconds(5), maximumOutputBytes: Int = 64 * 1024, liveAgents: [AgentName]? = nil
        ) {
            self.batch = batch
            self.batchWait = batchWait
            self.discoveryTimeout = discoveryTimeout
            self.replyGrace = replyGrace
            self.maximumOutputBytes = maximumOutputBytes
            self.liveAgents = liveAgents
        }
    }

    /// What the runner reports while it works (for a progress line on stderr).
    public enum Progress: Sendable {
        case discovered(found: Int, elapsed: Duration)
        case batchStarted(number: Int, of: Int, agents: [String])
        /// A node's final outcome, as soon as it is known (not found ones right after discovery).
        case finished(RemoteRunNode)
    }

    public let console: MeshConsole

    public init(console: MeshConsole) {
        self.console = console
    }

    private enum Event: Sendable {
        case delivery(AMQPMessage)
        case returned(ReturnedMessage)
        case consumerEnded(String)
        case wake
    }

    /// Discovers the target's nodes and runs `request` on them. Cancelling the calling task
    /// stops it sending requests; the report then has the nodes still running as
    /// `no_answer` and the unsent ones as `error`, "interrupted".
    public func run(
        _ request: RunRequest, on target: RemoteRunTarget, settings: Settings,
        progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws -> RemoteRunReport {
        try request.validate()
        let runID = "run-" + UUID().uuidString.prefix(13).lowercased()
        let started = ContinuousClock.now
        let replyQueue = try await self.console.declareReplyQueue()
        let consumer = try await self.console.consumeReplies(on: replyQueue)
        let requests = try await self.console.connection.openChannel()
        let options = RemoteRunPlan.Options(
            batch: settings.batch, batchWait: settings.batchWait,
            replyTimeout: .milliseconds(Int64(request.effectiveTimeoutSeconds * 1000)) + settings.replyGrace,
            maximumOutputBytes: settings.maximumOutputBytes)

        do {
            let report = try await self.discoverAndRun(
                request, on: target, settings: settings, options: options, progress: progress, runID: runID,
                started: started, replyQueue: replyQueue, consumer: consumer, requests: requests)
            try? await requests.close()
            return report
        } catch {
            try? await requests.close()
            throw error
        }
    }

    private func discoverAndRun(
        _ request: RunRequest, on target: RemoteRunTarget, settings: Settings, options: RemoteRunPlan.Options,
        progress: @escaping @Sendable (Progress) -> Void, runID: String, started: ContinuousClock.Instant, replyQueue: String,
        consumer: AMQPConsumer, requests: AMQPChannel
    ) async throws -> RemoteRunReport {
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await delivery in consumer { continuation.yield(.delivery(delivery)) }
                    continuation.yield(.consumerEnded("the reply consumer ended"))
                } catch {
                    continuation.yield(.consumerEnded("the reply consumer failed: \(error)"))
                }
            }
            // Requests go out `mandatory` on a channel of this run's own: one for an agent whose
            // queue is gone comes back at once, so a node that died after discovery is not
            // waited for until its deadline.
            let returns = requests.returns
            group.addTask {
                for await returned in returns { continuation.yield(.returned(returned)) }
            }
            defer {
                group.cancelAll()
                continuation.finish()
            }
            var iterator = events.makeAsyncIterator()
            var wakeAt: Duration?
            func now() -> Duration { started.duration(to: .now) }

            // Discovery.
            let discoveryID = "\(runID)-discover"
            let expected: [(agent: String, label: String?)]?
            var found: [String] = []
            var discoveryRequest: MeshMessage
            switch target {
            case .matching(let predicate, _):
                expected = nil
                discoveryRequest = try MeshMessage(opcode: .queryRequest, encoding: QueryRequest(what: .objectID, schemaID: MeshSchema.hostClassID, where: predicate))
            case .nodes(let nodes):
                expected = nodes.map { ($0.name.description, $0.label) }
                let names = nodes.map { Mesh.Predicate.compare(.eq, .property("_name"), .literal(.string($0.name.description))) }
                discoveryRequest = try MeshMessage(opcode: .agentLocateRequest, encoding: AgentLocateRequest(where: .or(names)))
            }
            let wanted: Int? = switch target {
            case .matching(_, let expect): expect
            case .nodes(let nodes): Set(nodes.map(\.name)).count
            }
            discoveryRequest.correlationID = discoveryID
            discoveryRequest.replyTo = replyQueue
            discoveryRequest.expiration = settings.discoveryTimeout
            let subject = discoveryRequest.opcode == .queryRequest ? QMF.Subject.query : QMF.Subject.agentLocate
            // With the registry's live set, each live agent is asked directly: it answers
            // even when it does not match (`[]`), so discovery can end once all answered.
            var pending: Set<String>? = nil
            if case .matching = target, let live = settings.liveAgents { pending = Set(live.map(\.description)) }
            if wanted != 0 && pending?.isEmpty != true {
                if let pending {
                    let body = discoveryRequest.bodyBuffer()
                    let properties = discoveryRequest.properties()
                    for agent in pending {
                        _ = try requests.publish(body, exchange: QMF.directExchange, routingKey: agent, mandatory: true, properties: properties)
                    }
                } else {
                    try self.console.publish(discoveryRequest, exchange: QMF.topicExchange, routingKey: subject)
                }
                wakeAt = settings.discoveryTimeout
                group.addTask {
                    try? await Task.sleep(until: started + settings.discoveryTimeout)
                    continuation.yield(.wake)
                }
            }
            var seen: Set<String> = []
            var unreachable: [String] = []
            discovery: while seen.count < (wanted ?? Int.max), pending?.isEmpty != true, now() < settings.discoveryTimeout {
                guard let event = await iterator.next() else { break }
                switch event {
                case .wake:
                    continue
                case .returned(let returned):
                    // A live agent's request queue is gone: it stopped since its last heartbeat.
                    guard returned.properties.correlationId == discoveryID, pending?.remove(returned.routingKey) != nil else { continue discovery }
                    unreachable.append(returned.routingKey)
                case .consumerEnded(let reason):
                    throw MeshError(.busLost, "discovery stopped: \(reason)")
                case .delivery(let delivery):
                    guard let reply = try? MeshMessage(properties: delivery.properties, body: delivery.body), reply.correlationID == discoveryID,
                        reply.opcode == .agentLocateResponse || reply.opcode == .queryResponse || reply.opcode == .exception, let agent = reply.agent
                    else { continue discovery }
                    if pending != nil {
                        guard pending?.contains(agent) == true, self.console.accepts(reply) else { continue discovery }
                        if !reply.partial { pending?.remove(agent) }
                        // Asked directly, a non-matching agent answers `[]`.
                        guard reply.opcode == .queryResponse, reply.body.listValue?.isEmpty == false else { continue discovery }
                    } else if reply.opcode == .exception {
                        continue discovery
                    }
                    if seen.insert(agent).inserted { found.append(agent) }
                }
            }
            wakeAt = nil
            let discoveryEnded: CollectionEnd
            var silent: [(agent: String, reason: String)] = unreachable.sorted().map {
                ($0, "live per the coordinator's registry, but the broker returned its discovery request: its request queue is gone")
            }
            if pending?.isEmpty == true {
                discoveryEnded = .allLiveAnswered
            } else if let wanted, seen.count >= wanted {
                if case .nodes = target { discoveryEnded = .allNamedAnswered } else { discoveryEnded = .expectedAnswered }
            } else {
                discoveryEnded = .timeout
                for agent in (pending ?? []).sorted() {
                    silent.append((agent, "live per the coordinator's registry, but did not answer discovery within \(settings.discoveryTimeout)"))
                }
            }
            progress(.discovered(found: found.count, elapsed: now()))

            // The run.
            var plan = RemoteRunPlan(found: found, expected: expected, expectedCount: wanted, silent: silent, options: options, runID: runID)
            run: while true {
                // Cancelled (the CLI's Ctrl-C): send nothing more, report who was running.
                if Task.isCancelled {
                    plan.abandon(reason: "the run was interrupted")
                    break run
                }
                let action = plan.next(now: now())
                for node in plan.takeFinished() { progress(.finished(node)) }
                let wakeUp: Duration
                switch action {
                case .finished:
                    break run
                case .send(let dispatches):
                    progress(.batchStarted(number: plan.report.batches, of: plan.batchCount, agents: dispatches.map(\.agent)))
                    let call = try MethodRequest(methodName: MeshMethod.run, encoding: request)
                    var runMessage = try MeshMessage(opcode: .methodRequest, encoding: call)
                    runMessage.userID = self.console.userID
                    runMessage.replyTo = replyQueue
                    for dispatch in dispatches {
                        runMessage.correlationID = dispatch.correlationID
                        // A request still queued when we give up must not start later (the
                        // expiration), nor one read late by a stopped or slow agent (the deadline).
                        let expiration = max(.milliseconds(1), dispatch.deadline - now())
                        runMessage.expiration = expiration
                        runMessage.deadline = RequestSigner.now() + expiration.wholeMilliseconds
                        var signed = runMessage
                        self.console.signer?.sign(
                            &signed, agent: dispatch.agent, method: MeshMethod.run,
                            expiresAt: RequestSigner.now() + (runMessage.expiration ?? .zero).wholeMilliseconds + 60_000)
                        do {
                            _ = try requests.publish(
                                signed.bodyBuffer(), exchange: QMF.directExchange, routingKey: dispatch.agent, mandatory: true,
                                properties: signed.properties())
                        } catch {
                            plan.sendFailed(correlationID: dispatch.correlationID, reason: "\(error)")
                        }
                    }
                    continue run
                case .waitForReplies(let until), .pause(let until):
                    wakeUp = until
                }
                if wakeAt.map({ wakeUp < $0 }) ?? true {
                    wakeAt = wakeUp
                    // A few milliseconds past the deadline, so the plan sees it as passed.
                    group.addTask {
                        try? await Task.sleep(until: started + wakeUp + .milliseconds(2))
                        continuation.yield(.wake)
                    }
                }
                guard let event = await iterator.next() else {
                    plan.abandon(reason: "the run was interrupted")
                    break run
                }
                switch event {
                case .wake:
                    if let scheduled = wakeAt, now() >= scheduled { wakeAt = nil }
                case .consumerEnded(let reason):
                    plan.abandon(reason: reason)
                    break run
                case .returned(let returned):
                    if let correlationID = returned.properties.correlationId {
                        plan.requestReturned(correlationID: correlationID, reason: "\(returned.replyCode) \(returned.replyText)")
                    }
                case .delivery(let delivery):
                    let correlationID = delivery.properties.correlationId
                    guard let reply = try? MeshMessage(properties: delivery.properties, body: delivery.body) else {
                        plan.replyReceived(correlationID: correlationID, agent: nil, .unreadable("not a mesh message"), now: now())
                        continue run
                    }
                    plan.replyReceived(correlationID: correlationID, agent: reply.agent, Self.reading(reply), now: now())
                }
            }
            for node in plan.takeFinished() { progress(.finished(node)) }
            try? await consumer.cancel()
            var report = plan.report
            report.discoveryEnded = discoveryEnded
            return report
        }
    }

    /// A `run` reply as the plan takes it.
    static func reading(_ reply: MeshMessage) -> RemoteRunPlan.Reply {
        switch reply.opcode {
        case .methodResponse:
            do {
                // The usual shape read from the tree; anything else through Codable.
                if case .map(let body) = reply.body, case .map(let arguments)? = body["_arguments"] {
                    return .result(try RunResult.reading(arguments))
                }
                return .result(try reply.decodeBody(MethodResponse.self).decodeArguments(RunResult.self))
            } catch {
                return .unreadable("\(error)")
            }
        case .exception:
            guard let exception = try? reply.decodeBody(ExceptionBody.self) else { return .unreadable("an _exception without a readable body") }
            return .exception(exception)
        default:
            return .unreadable("opcode \(reply.opcode.rawValue) is not an answer to run")
        }
    }
}
