import AMQPClient
import Foundation
import Mesh
import MeshClient

/// A member that got a new configuration job because a fact its parameters referenced
/// changed after it was configured (Audrey fills references "as facts arrive").
public struct Reconfiguration: Sendable, Hashable, Codable {
    public var member: String
    public var jobID: String
    /// The parameters whose resolved value changed (names only: some are secrets).
    public var changed: [String]
    /// `succeeded` or `failed`, and why.
    public var succeeded: Bool
    public var reason: String?
}

extension Launcher {
    /// The job name of the N-th configuration of an instance (N ≥ 2); the first is `configure`.
    static func reconfigureJobName(_ number: Int) -> String { "reconfigure-\(number)" }

    /// One pass of re-configuration over a configured deployment: reads the facts of every
    /// member that others reference (a `refresh` call, so custom facts written since are
    /// seen), resolves again, and gives each configured member whose resolved parameters
    /// differ from its last successful job a new job (recorded first, with a new id) and
    /// waits for its answer. Members whose parameters did not change get nothing.
    ///
    /// Does nothing unless the deployment is `configured` with an active generation whose
    /// members are all configured. A source whose agent does not answer leaves its
    /// consumers as they are (a missing fact is not a changed fact).
    ///
    /// The comparison runs without the launch lock (a pass that finds nothing to do writes
    /// nothing, not even an audit entry); the jobs are sent holding it, after checking
    /// again that the deployment and each member are still configured. When someone else
    /// holds the lock (a launch, `fwd` or `terminate` in another process), the pass sends
    /// nothing and returns empty: the next pass sees what they left.
    public func reconfigure(deployment: String, environment: String) async throws -> [Reconfiguration] {
        guard let record = try await self.store.deployment(deployment, environment: environment), record.status == .configured,
            let generation = try await self.store.generations(deployment: deployment, environment: environment).last(where: { $0.status == .active })
        else { return [] }
        let request = try JSONDecoder().decode(LaunchRequest.self, from: Data(generation.document.utf8))
        let plan = try self.validatedPlan(request)
        let instances = Dictionary(
            try await self.store.instances(generationID: generation.id).map { ($0.member, $0) }, uniquingKeysWith: { first, _ in first })
        guard plan.members.allSatisfy({ instances[$0.member.description]?.state == .configured }) else { return [] }

        var known = KnownValues()
        let actor = self.options.actor
        for (id, spec) in plan.secrets.sorted(by: { $0.key < $1.key }) {
            known.secrets[id] = try await self.store.secret(
                deployment: deployment, environment: environment, name: id.rawValue, actor: actor, generate: { spec.generate() }
            ).value
        }
        for member in plan.members { for service in member.services { known.markCompleted(member.member, service: service.name) } }

        let console = try await MeshConsole.connect(self.options.console, signer: self.options.signer, answers: self.options.answerCheck, logger: self.logger)
        do {
            let pending = try await self.pendingReconfigurations(plan, instances: instances, known: known, console: console)
            var done: [Reconfiguration] = []
            if !pending.isEmpty {
                done = try await self.withLaunchLock(deployment: deployment, environment: environment) {
                    try await self.send(pending, generationID: generation.id, deployment: deployment, environment: environment, console: console)
                }
            }
            try? await console.close()
            return done
        } catch let error as StateStoreError where error.code == .lockHeld {
            try? await console.close()
            return []
        } catch {
            try? await console.close()
            throw error
        }
    }

    /// A member to give a new job, and why.
    private struct PendingReconfiguration: Sendable {
        var instance: InstanceRecord
        var services: [ResolvedService]
        var changed: [String]
        var number: Int
    }

    private func send(
        _ pending: [PendingReconfiguration], generationID: Int64, deployment: String, environment: String, console: MeshConsole
    ) async throws -> [Reconfiguration] {
        // Checked again under the lock: a terminate or launch may have ended before we got it.
        guard try await self.store.deployment(deployment, environment: environment)?.status == .configured else { return [] }
        let current = Dictionary(
            try await self.store.instances(generationID: generationID).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var done: [Reconfiguration] = []
        for item in pending where current[item.instance.id]?.state == .configured {
            done.append(
                try await self.sendReconfiguration(
                    item.instance, services: item.services, changed: item.changed, number: item.number, deployment: deployment,
                    environment: environment, console: console))
        }
        return done
    }

    private func pendingReconfigurations(
        _ plan: ResolutionPlan, instances: [String: InstanceRecord], known: KnownValues, console: MeshConsole
    ) async throws -> [PendingReconfiguration] {
        var known = known
        // Only members whose facts someone references are asked.
        var sources = Set<MemberID>()
        for member in plan.members {
            for requirement in member.requirements { if case .fact(let source, _) = requirement { sources.insert(source) } }
        }
        for member in plan.members where sources.contains(member.member) {
            guard let instance = instances[member.member.description], let facts = await self.currentFacts(of: instance, console: console)
            else { continue }
            known.facts[member.member] = facts
        }

        var pending: [PendingReconfiguration] = []
        let resolution = plan.resolve(with: known)
        for member in plan.members {
            guard case .ready(let services) = resolution[member.member], let instance = instances[member.member.description] else { continue }
            let jobs = try await self.store.jobs(instanceID: instance.id)
            guard let last = jobs.filter({ $0.state == .succeeded }).max(by: { $0.createdAt < $1.createdAt }),
                let previous = try? last.payload.decode(as: ConfigurationJob.self)
            else { continue }
            let changed = Self.changedParameters(from: previous.services, to: services.map(\.spec))
            guard !changed.isEmpty else { continue }
            pending.append(PendingReconfiguration(instance: instance, services: services, changed: changed, number: jobs.count + 1))
        }
        return pending
    }

    /// An agent's facts as `refresh` reads them; a phone-home instance's as it last reported them.
    private func currentFacts(of instance: InstanceRecord, console: MeshConsole) async -> MeshValue? {
        if let direct = self.providers[instance.provider] as? any DirectInstanceProvider {
            return await direct.facts(instanceID: Self.instanceID(instance))
        }
        guard let agent = try? Self.agentName(of: instance) else { return nil }
        return await Self.refresh(agent, console: console)
    }

    /// Parameter names (`service.parameter`) whose value differs, or whose service was added or removed.
    public static func changedParameters(from old: [ServiceSpec], to new: [ServiceSpec]) -> [String] {
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var changed: [String] = []
        for service in new {
            guard let previous = before[service.name] else {
                changed.append(service.name)
                continue
            }
            for name in Set(previous.parameters.keys).union(service.parameters.keys).sorted()
            where previous.parameters[name] != service.parameters[name] {
                changed.append("\(service.name).\(name)")
            }
            if previous.script != service.script { changed.append("\(service.name) (script)") }
        }
        changed += old.map(\.name).filter { name in !new.contains { $0.name == name } }
        return changed
    }

    private func sendReconfiguration(
        _ instance: InstanceRecord, services: [ResolvedService], changed: [String], number: Int, deployment: String, environment: String,
        console: MeshConsole
    ) async throws -> Reconfiguration {
        let actor = self.options.actor
        let draft = ConfigurationJob(
            jobID: "-", deployment: "\(deployment)@\(environment)", services: services.map(\.spec),
            timeoutSeconds: max(1, Double(self.options.jobTimeout.components.seconds)))
        let job = try await self.store.recordJobIntent(
            instanceID: instance.id, name: Self.reconfigureJobName(number), payload: try MeshValue(encoding: draft), actor: actor)
        try await self.store.appendAudit(
            actor: actor, action: "instance.reconfigure", subject: "instance:\(Self.instanceID(instance))", outcome: .succeeded,
            deployment: deployment, environment: environment,
            detail: .map(["member": .string(instance.member), "job": .string(job.id), "changed": .list(changed.map(MeshValue.string))]))
        self.progress(.reconfiguring(member: instance.member, jobID: job.id, changed: changed))
        try await self.store.transitionInstance(instance.id, to: .configuring, providerHandle: nil, address: nil, reason: nil, actor: actor)
        var sent = draft
        sent.jobID = job.id
        let outcome: Result<JobResult, Failure>
        if let direct = self.providers[instance.provider] as? any DirectInstanceProvider {
            // A phone-home instance fetches the new job: it is recorded, so the API serves it.
            try await self.store.transitionJob(job.id, to: .sent, result: nil, actor: actor)
            outcome = await direct.deliver(sent, instanceID: Self.instanceID(instance), timeout: self.options.jobTimeout)
                .mapError { Failure(text: $0.reason) }
        } else {
            let agent = try Self.agentName(of: instance)
            let replyQueue = try await console.declareReplyQueue()
            let sentAt = console.connection.recoveryCount
            try await console.sendJob(sent, to: agent, replyQueue: replyQueue, correlationID: job.id)
            try await self.store.transitionJob(job.id, to: .sent, result: nil, actor: actor)
            let replies = try await console.collect(
                replyQueue: replyQueue, correlationID: job.id, from: agent, timeout: self.options.jobTimeout + .seconds(5),
                resend: FailoverResend(sentAt: sentAt) { [sent] in try await console.sendJob(sent, to: agent, replyQueue: replyQueue, correlationID: job.id) }
            ) { !$0.isEmpty }
            outcome = Self.jobResult(replies.first)
        }
        switch outcome {
        case .success(let result) where result.status == .succeeded:
            try await self.store.transitionJob(job.id, to: .succeeded, result: try MeshValue(encoding: result), actor: actor)
            try await self.store.transitionInstance(instance.id, to: .configured, providerHandle: nil, address: nil, reason: nil, actor: actor)
            self.progress(.configured(member: instance.member))
            return Reconfiguration(member: instance.member, jobID: job.id, changed: changed, succeeded: true)
        case .success(let result):
            let failing = result.services.last
            let reason = "re-configuration job \(result.status.rawValue)"
                + (failing.map { ", service \($0.name) exited \($0.exitCode): " + Self.lastLine($0.stderr.isEmpty ? $0.stdout : $0.stderr) } ?? "")
            try await self.store.transitionJob(job.id, to: .failed, result: try MeshValue(encoding: result), actor: actor)
            try await self.store.transitionInstance(instance.id, to: .failed, providerHandle: nil, address: nil, reason: reason, actor: actor)
            try await self.store.setDeploymentStatus(deployment, environment: environment, to: .failed, reason: "\(instance.member): \(reason)", actor: actor)
            self.progress(.failed(member: instance.member, reason: reason))
            return Reconfiguration(member: instance.member, jobID: job.id, changed: changed, succeeded: false, reason: reason)
        case .failure(let failure):
            try await self.store.transitionJob(job.id, to: .failed, result: .map(["error": .string(failure.text)]), actor: actor)
            try await self.store.transitionInstance(instance.id, to: .failed, providerHandle: nil, address: nil, reason: failure.text, actor: actor)
            try await self.store.setDeploymentStatus(
                deployment, environment: environment, to: .failed, reason: "\(instance.member): \(failure.text)", actor: actor)
            self.progress(.failed(member: instance.member, reason: failure.text))
            return Reconfiguration(member: instance.member, jobID: job.id, changed: changed, succeeded: false, reason: failure.text)
        }
    }
}
