import Foundation
import Mesh
import Testing

@testable import Conductor

/// A roll-out's world without processes or sockets, for `RollOutStateMachine`: an
/// in-memory store that applies the machine's actions as the real store would (refusing
/// the moves it refuses), a provider whose instances outlive a crashed coordinator, and
/// agents that remember the jobs they ran (a job sent again is answered from that memory).
/// Everything is deterministic, so a run is the same list of actions every time.
struct RollOutWorld {
    typealias Action = RollOutStateMachine.Action

    // The store.
    var generation: GenerationRecord
    var deploymentStatus: DeploymentStatus = .launching
    var instances: [InstanceRecord] = []
    var jobs: [JobRecord] = []
    var facts: [UUID: [FactRecord]] = [:]
    // The provider: instance id -> handle of what runs.
    var running: [String: InstanceHandle] = [:]
    var starts: [String] = []
    // The agents: job id -> the result they keep; real runs per job id and per member.
    var finishedJobs: [String: JobResult] = [:]
    var runs: [String: Int] = [:]
    var runsByMember: [String: Int] = [:]
    // The bus: answers not yet delivered (lost with the coordinator that waited for them).
    var answers: [(MemberID, JobResult)] = []
    private var counter = 0

    init(generationStatus: GenerationStatus = .pending) {
        self.generation = GenerationRecord(
            id: 1, deploymentID: 1, number: 1, status: generationStatus, document: "{}", documentHash: "h", failureReason: nil,
            createdAt: Date(timeIntervalSince1970: 0), activatedAt: nil)
    }

    var records: RollOutRecords {
        RollOutRecords(
            instances: self.instances, jobs: Dictionary(grouping: self.jobs, by: \.instanceID), facts: self.facts)
    }

    private mutating func next() -> Int {
        self.counter += 1
        return self.counter
    }

    private mutating func stamp() -> Date { Date(timeIntervalSince1970: Double(self.next())) }

    static func address(ordinal: Int) -> String { "10.0.0.\(ordinal + 2)" }

    /// Carries out one action; returns what the machine says to its outcome.
    mutating func perform(_ action: Action, on machine: inout RollOutStateMachine) -> [Action] {
        switch action {
        case .report, .finish:
            return []
        case .armWaitBudget:
            return machine.waitBudgetArmed(now: .zero)
        case .recordInstance(let member, let provider):
            if let existing = self.instances.first(where: { $0.member == member.description }) { return machine.instanceRecorded(existing) }
            let id = UUID(uuidString: String(format: "00000000-0000-0000-0000-%012d", self.next()))!
            let now = self.stamp()
            let record = InstanceRecord(
                id: id, generationID: self.generation.id, member: member.description, provider: provider, providerHandle: nil,
                state: .recorded, address: nil, failureReason: nil, createdAt: now, updatedAt: now)
            self.instances.append(record)
            return machine.instanceRecorded(record)
        case .startInstance(let member, let instanceID, let ordinal):
            let id = instanceID.uuidString.lowercased()
            self.starts.append(id)
            let handle = InstanceHandle(instanceID: id, value: "pid-\(self.next())", address: Self.address(ordinal: ordinal))
            self.running[id] = handle
            return machine.instanceStarted(member, handle)
        case .findInstance(let member, let instanceID, let handle):
            let id = instanceID.uuidString.lowercased()
            let found = handle.flatMap { self.running[$0.instanceID] == $0 ? $0 : nil } ?? self.running[id]
            return machine.instanceFound(member, found)
        case .transitionInstance(let id, let state, let handle, let address, let reason):
            guard let index = self.instances.firstIndex(where: { $0.id == id }) else {
                Issue.record("no instance \(id)")
                return []
            }
            #expect(self.instances[index].state.canMove(to: state), "instance \(self.instances[index].member): \(self.instances[index].state) -> \(state)")
            self.instances[index].state = state
            if let handle { self.instances[index].providerHandle = Launcher.encode(handle) }
            if let address { self.instances[index].address = address }
            if let reason { self.instances[index].failureReason = reason }
            return []
        case .recordFact(let id, let name, let value):
            let fact = FactRecord(instanceID: id, name: name, value: value, updatedAt: self.stamp())
            self.facts[id, default: []].removeAll { $0.name == name }
            self.facts[id, default: []].append(fact)
            return []
        case .refreshFacts(let member, let agent):
            let handle = self.running[agent.instance]
            return machine.factsRefreshed(member, handle.map { .map(["ipaddress": .string($0.address ?? "?")]) })
        case .recordJob(let member, let instanceID, let name, let draft):
            if let existing = self.jobs.first(where: { $0.instanceID == instanceID && $0.name == name }) { return machine.jobRecorded(member, existing) }
            let now = self.stamp()
            let record = JobRecord(
                id: "job-\(self.next())", instanceID: instanceID, name: name, payload: try! MeshValue(encoding: draft), state: .recorded,
                result: nil, createdAt: now, updatedAt: now)
            self.jobs.append(record)
            return machine.jobRecorded(member, record)
        case .sendJob(let member, let job, _):
            if var kept = self.finishedJobs[job.jobID] {
                kept.replayed = true
                self.answers.append((member, kept))
            } else {
                self.runs[job.jobID, default: 0] += 1
                self.runsByMember[member.description, default: 0] += 1
                let services = job.services.map { ServiceResult(name: $0.name, exitCode: 0, stdout: "\($0.name) ran", stderr: "", durationMilliseconds: 1) }
                let result = JobResult(jobID: job.jobID, status: .succeeded, services: services)
                self.finishedJobs[job.jobID] = result
                self.answers.append((member, result))
            }
            return []
        case .transitionJob(let id, let state, let result):
            guard let index = self.jobs.firstIndex(where: { $0.id == id }) else {
                Issue.record("no job \(id)")
                return []
            }
            #expect(self.jobs[index].state.canMove(to: state), "job \(id): \(self.jobs[index].state) -> \(state)")
            self.jobs[index].state = state
            switch result {
            case .result(let answer)?: self.jobs[index].result = try! MeshValue(encoding: answer)
            case .error(let text)?: self.jobs[index].result = .map(["error": .string(text)])
            case nil: break
            }
            return []
        case .activateGeneration:
            self.generation.status = .active
            return []
        case .failGeneration(_, let reason):
            self.generation.status = .failed
            self.generation.failureReason = reason
            return []
        case .setDeploymentStatus(let status, _):
            self.deploymentStatus = status
            return []
        }
    }

    /// What happens next on the bus when the coordinator has nothing to do: a heartbeat
    /// of an agent it waits for, else an answer.
    mutating func nextEvent(_ machine: inout RollOutStateMachine, plan: ResolutionPlan) -> [Action]? {
        for member in plan.members where machine.phase(of: member.member) == .awaitingAgent {
            guard let record = self.instances.first(where: { $0.member == member.member.description }),
                let agent = RollOutStateMachine.agentName(of: record), self.running[agent.instance] != nil
            else { continue }
            return machine.heartbeat(from: agent, attributes: .map([:]))
        }
        if !self.answers.isEmpty {
            let (member, result) = self.answers.removeFirst()
            return machine.jobAnswered(member, .result(result))
        }
        return nil
    }

    /// Runs a roll-out from what the world records now. Stops (a crash) once `stopAfter`
    /// actions were carried out, counting from the start of this run; answers still on
    /// the bus then are lost with it. Returns the actions carried out and the result, if any.
    mutating func rollOut(_ configuration: RollOutStateMachine.Configuration, stopAfter: Int? = nil) -> (actions: [Action], result: LaunchResult?) {
        var configuration = configuration
        configuration.generation = self.generation
        var machine = RollOutStateMachine(configuration)
        var done: [Action] = []
        var result: LaunchResult?
        var crashed = false

        func carryOut(_ actions: [Action]) {
            for action in actions where !crashed && result == nil {
                let next = self.perform(action, on: &machine)
                done.append(action)
                if case .finish(let finished) = action { result = finished }
                if done.count == stopAfter {
                    crashed = true
                    return
                }
                carryOut(next)
            }
        }

        carryOut(machine.recovered(self.records, now: .zero))
        var events = 0
        while !crashed, result == nil, events < 1000 {
            events += 1
            guard let actions = self.nextEvent(&machine, plan: configuration.plan) else {
                carryOut(machine.tick(now: configuration.waitBudget))
                continue
            }
            carryOut(actions)
        }
        if crashed { self.answers = [] }
        return (done, result)
    }
}
