import Foundation
import Mesh
import Testing

@testable import Conductor

/// The roll-out as a value: events in, actions out; no processes, no sockets, no clocks.
@Suite struct RollOutStateMachineTests {
    typealias Action = RollOutStateMachine.Action

    /// db, then web, which needs db's address and db.server to have run.
    static let chainYAML = """
        name: chain
        instances:
          db:
            services:
              server: {script: "true"}
          web:
            services:
              app:
                script: "true"
                after: [db.server]
                parameters: {db_host: "${db.ipaddress}"}
        """

    static let db = MemberID(instance: "db", index: nil)
    static let web = MemberID(instance: "web", index: nil)
    static let dbID = UUID(uuidString: "00000000-0000-0000-0000-0000000000d6")!
    static let webID = UUID(uuidString: "00000000-0000-0000-0000-0000000000eb")!
    static let budget: Duration = .seconds(30)

    static func plan(_ yaml: String) -> ResolutionPlan {
        DeployableLoader.validate(yaml: yaml, file: "chain.yml").plan!
    }

    static func configuration(_ plan: ResolutionPlan = plan(chainYAML), generation: GenerationStatus = .pending) -> RollOutStateMachine.Configuration {
        RollOutStateMachine.Configuration(
            plan: plan, environment: "default",
            generation: GenerationRecord(
                id: 7, deploymentID: 1, number: 3, status: generation, document: "{}", documentHash: "h", failureReason: nil,
                createdAt: Date(timeIntervalSince1970: 0), activatedAt: nil),
            waitBudget: budget, jobTimeout: .seconds(300), workDirectories: [db: "/w/db", web: "/w/web"])
    }

    static func record(_ id: UUID, _ member: MemberID, _ state: InstanceState = .recorded, handle: InstanceHandle? = nil) -> InstanceRecord {
        InstanceRecord(
            id: id, generationID: 7, member: member.description, provider: "local", providerHandle: handle.map(Launcher.encode),
            state: state, address: handle?.address, failureReason: nil, createdAt: Date(timeIntervalSince1970: 1), updatedAt: Date(timeIntervalSince1970: 1))
    }

    static func handle(_ id: UUID, _ address: String) -> InstanceHandle {
        InstanceHandle(instanceID: id.uuidString.lowercased(), value: "pid", address: address)
    }

    static func agent(_ id: UUID) -> AgentName { try! AgentName(instance: id.uuidString.lowercased()) }

    static func facts(_ address: String) -> MeshValue { .map(["ipaddress": .string(address)]) }

    static func job(_ id: String, _ instance: UUID, name: String = Launcher.jobName, _ state: JobState = .recorded, payload: ConfigurationJob, result: JobResult? = nil, at: Double = 2) -> JobRecord {
        JobRecord(
            id: id, instanceID: instance, name: name, payload: try! MeshValue(encoding: payload), state: state,
            result: result.map { try! MeshValue(encoding: $0) }, createdAt: Date(timeIntervalSince1970: at), updatedAt: Date(timeIntervalSince1970: at))
    }

    static let dbDraft = ConfigurationJob(jobID: "-", deployment: "chain@default", services: [ServiceSpec(name: "server", script: "true")], timeoutSeconds: 300)
    static let webDraft = ConfigurationJob(
        jobID: "-", deployment: "chain@default", services: [ServiceSpec(name: "app", script: "true", parameters: ["db_host": .string("10.0.0.2")])],
        timeoutSeconds: 300)

    static func sent(_ draft: ConfigurationJob, _ id: String) -> ConfigurationJob {
        var job = draft
        job.jobID = id
        return job
    }

    static func succeeded(_ id: String, _ service: String) -> JobResult {
        JobResult(jobID: id, status: .succeeded, services: [ServiceResult(name: service, exitCode: 0, stdout: "ok", stderr: "", durationMilliseconds: 1)])
    }

    /// A chain with both members started (db at .2, web at .3), the wait budget armed at
    /// zero, and no agent heard yet.
    static func started() -> RollOutStateMachine {
        var machine = RollOutStateMachine(configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(record(dbID, db))
        _ = machine.instanceStarted(db, handle(dbID, "10.0.0.2"))
        _ = machine.instanceRecorded(record(webID, web))
        _ = machine.instanceStarted(web, handle(webID, "10.0.0.3"))
        _ = machine.waitBudgetArmed(now: .zero)
        return machine
    }

    /// `started()`, db's agent heard and its job sent as job-d.
    static func dbSent() -> RollOutStateMachine {
        var machine = started()
        _ = machine.heartbeat(from: agent(dbID), attributes: .map([:]))
        _ = machine.factsRefreshed(db, facts("10.0.0.2"))
        _ = machine.jobRecorded(db, job("job-d", dbID, payload: dbDraft))
        return machine
    }

    static let webWaits = ["fact ipaddress of db", "db.server to complete"]
    static let webWaitsValue = MeshValue.list(webWaits.map { .string($0) })

    // MARK: - A fresh launch of a chain, step by step

    @Test func aFreshLaunchRecordsTheFirstMemberFirst() {
        var machine = RollOutStateMachine(Self.configuration())
        #expect(machine.recovered(RollOutRecords(), now: .zero) == [.report(.recorded(deployment: "chain", environment: "default", generation: 3, members: 2)), .recordInstance(Self.db, provider: "local")])
    }

    /// Starts run side by side: the next member is recorded while the first one starts.
    @Test func aRecordedInstanceIsStartedAndTheNextMemberFollowsAtOnce() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        #expect(machine.instanceRecorded(Self.record(Self.dbID, Self.db)) == [.report(.starting(member: "db", instanceID: Self.dbID.uuidString.lowercased())), .transitionInstance(Self.dbID, to: .starting, handle: nil, address: nil, reason: nil), .startInstance(Self.db, instanceID: Self.dbID, ordinal: 0), .recordInstance(Self.web, provider: "local")])
    }

    @Test func aStartedInstanceIsRecorded() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        let handle = Self.handle(Self.dbID, "10.0.0.2")
        #expect(machine.instanceStarted(Self.db, handle) == [.transitionInstance(Self.dbID, to: .started, handle: handle, address: "10.0.0.2", reason: nil), .report(.started(member: "db", address: "10.0.0.2", reused: false))])
    }

    /// The budget waits for the slowest start, even when it is not the last member's.
    @Test func theBudgetIsArmedOnceTheLastStartReturns() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        #expect(!machine.instanceRecorded(Self.record(Self.webID, Self.web)).contains(.armWaitBudget))
        #expect(!machine.instanceStarted(Self.web, Self.handle(Self.webID, "10.0.0.3")).contains(.armWaitBudget))
        #expect(machine.instanceStarted(Self.db, Self.handle(Self.dbID, "10.0.0.2")).contains(.armWaitBudget))
    }

    @Test func theLastStartedMemberLeavesTheMachineWaitingForAgents() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        _ = machine.instanceStarted(Self.db, Self.handle(Self.dbID, "10.0.0.2"))
        _ = machine.instanceRecorded(Self.record(Self.webID, Self.web))
        let handle = Self.handle(Self.webID, "10.0.0.3")
        #expect(machine.instanceStarted(Self.web, handle) == [.transitionInstance(Self.webID, to: .started, handle: handle, address: "10.0.0.3", reason: nil), .report(.started(member: "web", address: "10.0.0.3", reused: false)), .armWaitBudget])
    }

    @Test func theBudgetCountsFromWhenEveryMemberWasStarted() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        #expect(machine.tick(now: Self.budget * 2) == [], "a slow provider's start eats no budget")
        _ = machine.instanceStarted(Self.db, Self.handle(Self.dbID, "10.0.0.2"))
        _ = machine.instanceRecorded(Self.record(Self.webID, Self.web))
        _ = machine.instanceStarted(Self.web, Self.handle(Self.webID, "10.0.0.3"))
        #expect(machine.tick(now: Self.budget * 3) == [], "not armed yet")
        _ = machine.waitBudgetArmed(now: Self.budget * 3)
        #expect(machine.tick(now: Self.budget * 4 - .milliseconds(1)) == [])
        #expect(machine.tick(now: Self.budget * 4).contains(.report(.failed(member: "db", reason: "blocked: its agent never came up within \(Self.budget) (see /w/db/agent.log)"))))
    }

    @Test func aHeartbeatAsksForTheAgentsFacts() {
        var machine = Self.started()
        #expect(machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:])) == [.refreshFacts(Self.db, Self.agent(Self.dbID))])
    }

    @Test func aSecondHeartbeatWhileReadingFactsAsksNothing() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        #expect(machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:])) == [])
    }

    @Test func factsMakeTheMemberUpAndItsJobIsRecorded() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        #expect(machine.factsRefreshed(Self.db, Self.facts("10.0.0.2")) == [.recordFact(Self.dbID, name: "ipaddress", value: .string("10.0.0.2")), .report(.agentUp(member: "db", address: "10.0.0.2")), .recordJob(Self.db, instanceID: Self.dbID, name: "configure", draft: Self.dbDraft)])
    }

    @Test func theHeartbeatsAttributesStandInForFactsWhenRefreshIsNotAnswered() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: Self.facts("10.0.0.9"))
        #expect(machine.factsRefreshed(Self.db, nil).first == .recordFact(Self.dbID, name: "ipaddress", value: .string("10.0.0.9")))
    }

    @Test func aRecordedJobIsSentUnderItsID() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.db, Self.facts("10.0.0.2"))
        #expect(machine.jobRecorded(Self.db, Self.job("job-d", Self.dbID, payload: Self.dbDraft)) == [.transitionInstance(Self.dbID, to: .configuring, handle: nil, address: nil, reason: nil), .recordFact(Self.dbID, name: "_waiting_for", value: .list([])), .sendJob(Self.db, Self.sent(Self.dbDraft, "job-d"), to: Self.agent(Self.dbID)), .transitionJob("job-d", to: .sent, result: nil), .report(.configuring(member: "db", jobID: "job-d"))])
    }

    @Test func aSentJobPutsTheMemberInConfiguring() {
        #expect(Self.dbSent().phase(of: Self.db) == .configuring(jobID: "job-d"))
    }

    @Test func configuringMapsOntoTheStoresStates() {
        #expect(MemberPhase.configuring(jobID: "j").instanceState == .configuring && MemberPhase.configuring(jobID: "j").jobState == .sent)
    }

    @Test func aMemberWaitingForReferencesSaysWhatItWaitsFor() {
        var machine = Self.dbSent()
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        #expect(machine.factsRefreshed(Self.web, Self.facts("10.0.0.3")) == [.recordFact(Self.webID, name: "ipaddress", value: .string("10.0.0.3")), .report(.agentUp(member: "web", address: "10.0.0.3")), .recordFact(Self.webID, name: "_waiting_for", value: .list([.string("db.server to complete")])), .report(.waiting(member: "web", on: ["db.server to complete"]))])
    }

    @Test func aSucceededJobIsRecordedThenTheFactsAreReadAgain() {
        var machine = Self.dbSent()
        let result = Self.succeeded("job-d", "server")
        #expect(machine.jobAnswered(Self.db, .result(result)) == [.transitionJob("job-d", to: .succeeded, result: .result(result)), .refreshFacts(Self.db, Self.agent(Self.dbID))])
    }

    @Test func theRereadFactsConfigureTheMemberAndReleaseItsDependents() {
        var machine = Self.dbSent()
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.web, Self.facts("10.0.0.3"))
        _ = machine.jobAnswered(Self.db, .result(Self.succeeded("job-d", "server")))
        #expect(machine.factsRefreshed(Self.db, Self.facts("10.0.0.2")) == [.transitionInstance(Self.dbID, to: .configured, handle: nil, address: nil, reason: nil), .report(.configured(member: "db")), .recordJob(Self.web, instanceID: Self.webID, name: "configure", draft: Self.webDraft)])
    }

    @Test func theLastConfiguredMemberFinishesTheRollOut() {
        var machine = Self.dbSent()
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.web, Self.facts("10.0.0.3"))
        _ = machine.jobAnswered(Self.db, .result(Self.succeeded("job-d", "server")))
        _ = machine.factsRefreshed(Self.db, Self.facts("10.0.0.2"))
        _ = machine.jobRecorded(Self.web, Self.job("job-w", Self.webID, payload: Self.webDraft))
        _ = machine.jobAnswered(Self.web, .result(Self.succeeded("job-w", "app")))
        let actions = machine.factsRefreshed(Self.web, Self.facts("10.0.0.3"))
        #expect(actions.dropLast() == [.transitionInstance(Self.webID, to: .configured, handle: nil, address: nil, reason: nil), .report(.configured(member: "web")), .activateGeneration(7), .setDeploymentStatus(.configured, reason: nil), .report(.finished(configured: true))])
        guard case .finish(let result)? = actions.last else { return #expect(Bool(false), "no finish: \(actions)") }
        #expect(result.configured && result.members.map(\.state) == ["configured", "configured"])
        #expect(result.members.last?.services.first?.parameters == ["db_host": "10.0.0.2"])
    }

    @Test func aFailedRollOutOfAnActiveGenerationFailsTheDeploymentNotTheGeneration() {
        var machine = RollOutStateMachine(Self.configuration(generation: .active))
        let dbRecord = Self.record(Self.dbID, Self.db, .configured, handle: Self.handle(Self.dbID, "10.0.0.2"))
        let webRecord = Self.record(Self.webID, Self.web, .failed)
        _ = machine.recovered(RollOutRecords(instances: [dbRecord, webRecord]), now: .zero)
        #expect(machine.instanceFound(Self.db, nil).contains(.setDeploymentStatus(.failed, reason: "db: the instance is gone (was configured); web: instance failed")))
    }

    // MARK: - Facts out of order, failures, budgets

    @Test func factsArrivingBeforeTheirSourceIsUpLeaveTheMemberWaiting() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        #expect(machine.factsRefreshed(Self.web, Self.facts("10.0.0.3")) == [.recordFact(Self.webID, name: "ipaddress", value: .string("10.0.0.3")), .report(.agentUp(member: "web", address: "10.0.0.3")), .recordFact(Self.webID, name: "_waiting_for", value: Self.webWaitsValue), .report(.waiting(member: "web", on: Self.webWaits))])
    }

    @Test func theSourceArrivingLaterNarrowsTheWait() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.web, Self.facts("10.0.0.3"))
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        #expect(machine.factsRefreshed(Self.db, Self.facts("10.0.0.2")).contains(.report(.waiting(member: "web", on: ["db.server to complete"]))))
    }

    @Test func aStartFailureFailsTheMember() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        #expect(machine.startFailed(Self.db, reason: "no room") == [.transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: "no room"), .report(.failed(member: "db", reason: "no room"))])
    }

    @Test func aMemberWhoseDependencyFailedIsBlocked() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        _ = machine.startFailed(Self.db, reason: "no room")
        _ = machine.instanceRecorded(Self.record(Self.webID, Self.web))
        _ = machine.instanceStarted(Self.web, Self.handle(Self.webID, "10.0.0.3"))
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        let reason = "blocked: needs fact ipaddress of db, but db failed"
        #expect(machine.factsRefreshed(Self.web, Self.facts("10.0.0.3")).suffix(5).dropLast() == [.transitionInstance(Self.webID, to: .failed, handle: nil, address: nil, reason: reason), .report(.failed(member: "web", reason: reason)), .failGeneration(7, reason: "db: no room; web: \(reason)"), .report(.finished(configured: false))])
    }

    @Test func aBlockedMemberIsTabledAsBlocked() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(), now: .zero)
        _ = machine.instanceRecorded(Self.record(Self.dbID, Self.db))
        _ = machine.startFailed(Self.db, reason: "no room")
        _ = machine.instanceRecorded(Self.record(Self.webID, Self.web))
        _ = machine.instanceStarted(Self.web, Self.handle(Self.webID, "10.0.0.3"))
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.web, Self.facts("10.0.0.3"))
        #expect(machine.table().map(\.state) == ["failed", "blocked"])
    }

    @Test func nothingFailsBeforeTheBudgetIsSpent() {
        var machine = Self.started()
        #expect(machine.tick(now: Self.budget - .milliseconds(1)) == [])
    }

    @Test func aSpentBudgetFailsSilentAgentsAndWaitingMembers() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.webID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.web, Self.facts("10.0.0.3"))
        let never = "blocked: its agent never came up within \(Self.budget) (see /w/db/agent.log)"
        let waited = "blocked: waited \(Self.budget) for fact ipaddress of db, db.server to complete"
        #expect(machine.tick(now: Self.budget).prefix(4) == [.transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: never), .report(.failed(member: "db", reason: never)), .transitionInstance(Self.webID, to: .failed, handle: nil, address: nil, reason: waited), .report(.failed(member: "web", reason: waited))])
    }

    @Test func aSpentBudgetFinishesTheRollOut() {
        var machine = Self.started()
        #expect(machine.tick(now: Self.budget).last.map { if case .finish(let result) = $0 { !result.configured } else { false } } == true)
    }

    @Test func aFailedJobFailsTheMember() {
        var machine = Self.dbSent()
        let result = JobResult(jobID: "job-d", status: .failed, services: [ServiceResult(name: "server", exitCode: 3, stdout: "", stderr: "starting\nno disk", durationMilliseconds: 1)])
        #expect(machine.jobAnswered(Self.db, .result(result)).prefix(3) == [.transitionJob("job-d", to: .failed, result: .result(result)), .transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: "job failed, service server exited 3: no disk"), .report(.failed(member: "db", reason: "job failed, service server exited 3: no disk"))])
    }

    @Test func aRefusedJobFailsTheMember() {
        var machine = Self.dbSent()
        #expect(machine.jobAnswered(Self.db, .refused("the agent refused the job: forbidden")).prefix(2) == [.transitionJob("job-d", to: .failed, result: .error("the agent refused the job: forbidden")), .transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: "the agent refused the job: forbidden")])
    }

    @Test func aLostJobFailsTheMember() {
        var machine = Self.dbSent()
        let reason = "no answer to its job within the job timeout"
        #expect(machine.jobLost(Self.db).prefix(3) == [.transitionJob("job-d", to: .failed, result: .error(reason)), .transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: reason), .report(.failed(member: "db", reason: reason))])
    }

    @Test func anAnswerForAMemberNotConfiguringIsIgnored() {
        var machine = Self.started()
        #expect(machine.jobAnswered(Self.db, .result(Self.succeeded("job-d", "server"))) == [])
    }

    // MARK: - Recovery: what a crashed run left

    @Test func aRecoveredPhaseFollowsTheInstanceRecord() {
        #expect([InstanceState.recorded, .starting, .configured, .failed].map { MemberPhase(recovered: Self.record(Self.dbID, Self.db, $0)) } == [.recorded, .locating, .locating, .failed("instance failed")])
    }

    @Test func aRecoveredRecordedInstanceIsStartedWithoutRecordingItAgain() {
        var machine = RollOutStateMachine(Self.configuration())
        #expect(machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db)]), now: .zero).dropFirst() == [.report(.starting(member: "db", instanceID: Self.dbID.uuidString.lowercased())), .transitionInstance(Self.dbID, to: .starting, handle: nil, address: nil, reason: nil), .startInstance(Self.db, instanceID: Self.dbID, ordinal: 0), .recordInstance(Self.web, provider: "local")])
    }

    @Test func aRecoveredStartedInstanceIsLookedFor() {
        var machine = RollOutStateMachine(Self.configuration())
        let handle = Self.handle(Self.dbID, "10.0.0.2")
        #expect(machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .started, handle: handle)]), now: .zero).dropFirst() == [.findInstance(Self.db, instanceID: Self.dbID, handle: handle)])
    }

    @Test func aFoundRunningInstanceIsReused() {
        var machine = RollOutStateMachine(Self.configuration())
        let handle = Self.handle(Self.dbID, "10.0.0.2")
        _ = machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .started, handle: handle)]), now: .zero)
        #expect(machine.instanceFound(Self.db, handle) == [.report(.started(member: "db", address: "10.0.0.2", reused: true)), .recordInstance(Self.web, provider: "local")])
    }

    @Test func anInstanceFoundAfterADeathBeforeItsHandleWasRecordedIsRecordedStarted() {
        var machine = RollOutStateMachine(Self.configuration())
        let handle = Self.handle(Self.dbID, "10.0.0.2")
        _ = machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .starting)]), now: .zero)
        #expect(machine.instanceFound(Self.db, handle).first == .transitionInstance(Self.dbID, to: .started, handle: handle, address: "10.0.0.2", reason: nil))
    }

    @Test func aStartingInstanceNotRunningIsStartedAgainUnderItsID() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .starting)]), now: .zero)
        #expect(machine.instanceFound(Self.db, nil) == [.report(.starting(member: "db", instanceID: Self.dbID.uuidString.lowercased())), .startInstance(Self.db, instanceID: Self.dbID, ordinal: 0), .recordInstance(Self.web, provider: "local")])
    }

    @Test func aStartedInstanceNowGoneFailsInsteadOfStartingASecond() {
        var machine = RollOutStateMachine(Self.configuration())
        _ = machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .started, handle: Self.handle(Self.dbID, "10.0.0.2"))]), now: .zero)
        #expect(machine.instanceFound(Self.db, nil) == [.transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: "the instance is gone (was started)"), .recordInstance(Self.web, provider: "local")])
    }

    @Test func aRecoveredFailedMemberIsSkipped() {
        var machine = RollOutStateMachine(Self.configuration())
        #expect(machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .failed)]), now: .zero).dropFirst() == [.recordInstance(Self.web, provider: "local")])
    }

    @Test func aJobAlreadySucceededIsNotSentAgain() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.db, Self.facts("10.0.0.2"))
        let done = Self.job("job-d", Self.dbID, .succeeded, payload: Self.dbDraft, result: Self.succeeded("job-d", "server"))
        #expect(machine.jobRecorded(Self.db, done) == [.refreshFacts(Self.db, Self.agent(Self.dbID))])
    }

    @Test func aJobThatFailedEarlierFailsTheMember() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.db, Self.facts("10.0.0.2"))
        #expect(machine.jobRecorded(Self.db, Self.job("job-d", Self.dbID, .failed, payload: Self.dbDraft)).first == .transitionInstance(Self.dbID, to: .failed, handle: nil, address: nil, reason: "its job job-d failed earlier"))
    }

    @Test func aSentJobIsSentAgainUnderItsRecordedID() {
        var machine = Self.started()
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.db, Self.facts("10.0.0.2"))
        #expect(machine.jobRecorded(Self.db, Self.job("job-d", Self.dbID, .sent, payload: Self.dbDraft)).contains(.sendJob(Self.db, Self.sent(Self.dbDraft, "job-d"), to: Self.agent(Self.dbID))))
    }

    @Test func anInterruptedReconfigurationIsSentAgainAsRecorded() {
        var machine = RollOutStateMachine(Self.configuration(generation: .active))
        let handle = Self.handle(Self.dbID, "10.0.0.2")
        var changed = Self.dbDraft
        changed.services[0].parameters["mode"] = .string("replica")
        let jobs = [
            Self.job("job-d", Self.dbID, .succeeded, payload: Self.dbDraft, result: Self.succeeded("job-d", "server"), at: 2),
            Self.job("job-r", Self.dbID, name: "reconfigure-2", .sent, payload: changed, at: 3),
        ]
        _ = machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .configured, handle: handle)], jobs: [Self.dbID: jobs]), now: .zero)
        _ = machine.instanceFound(Self.db, handle)
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        #expect(machine.factsRefreshed(Self.db, Self.facts("10.0.0.2")).dropFirst(2) == [.transitionInstance(Self.dbID, to: .configuring, handle: nil, address: nil, reason: nil), .recordFact(Self.dbID, name: "_waiting_for", value: .list([])), .sendJob(Self.db, Self.sent(changed, "job-r"), to: Self.agent(Self.dbID)), .transitionJob("job-r", to: .sent, result: nil), .report(.configuring(member: "db", jobID: "job-r"))])
    }

    @Test func aConfiguredInstanceWhoseJobIsFoundSucceededStaysConfigured() {
        var machine = RollOutStateMachine(Self.configuration(generation: .active))
        let handle = Self.handle(Self.dbID, "10.0.0.2")
        _ = machine.recovered(RollOutRecords(instances: [Self.record(Self.dbID, Self.db, .configured, handle: handle)]), now: .zero)
        _ = machine.instanceFound(Self.db, handle)
        _ = machine.heartbeat(from: Self.agent(Self.dbID), attributes: .map([:]))
        _ = machine.factsRefreshed(Self.db, Self.facts("10.0.0.2"))
        _ = machine.jobRecorded(Self.db, Self.job("job-d", Self.dbID, .succeeded, payload: Self.dbDraft, result: Self.succeeded("job-d", "server")))
        #expect(machine.factsRefreshed(Self.db, Self.facts("10.0.0.2")).first == .report(.configured(member: "db")))
    }

    // MARK: - A crash after every action of the webapp launch

    /// examples/webapp: db, web[0], web[1], lb.
    static let webapp: RollOutStateMachine.Configuration = {
        let plan = DeployableLoader.load(file: LaunchTests.repository + "/examples/webapp/deployable.yml").plan!
        var webapp = RollOutStateMachineTests.configuration(plan)
        webapp.secrets = plan.secrets.mapValues { _ in "s3cret" }
        return webapp
    }()

    static let everyMemberOnce = ["db": 1, "web[0]": 1, "web[1]": 1, "lb": 1]

    @Test func theWebappLaunchConfiguresEveryMemberOnce() {
        var world = RollOutWorld()
        let run = world.rollOut(Self.webapp)
        #expect(run.result?.configured == true)
        #expect(world.starts.count == 4)
        #expect(world.runsByMember == Self.everyMemberOnce)
        #expect(world.generation.status == .active && world.deploymentStatus == .configured)
    }

    /// The launch is run to its end once (N actions); then, for every k, a launch that
    /// dies after its k-th action is finished by a fresh machine that recovered what the
    /// store kept. The instances and the agents' memories outlive the crash; the answers
    /// the dead coordinator waited for do not.
    @Test func aLaunchCrashedAfterAnyActionIsFinishedByReplayDuplicatingNothing() throws {
        var reference = RollOutWorld()
        let full = reference.rollOut(Self.webapp)
        let table = try #require(full.result).members
        #expect(full.actions.count > 50)
        for index in 0..<full.actions.count {
            var world = RollOutWorld()
            let crashed = world.rollOut(Self.webapp, stopAfter: index + 1)
            let replay = world.rollOut(Self.webapp)
            let at = "crash after action \(index): \(crashed.actions.last.map { "\($0)" } ?? "-")"
            #expect(crashed.actions == Array(full.actions.prefix(index + 1)), "\(at)")
            #expect(replay.result?.configured == true, "\(at)")
            #expect(world.starts.count == 4 && Set(world.starts).count == 4, "\(at): started \(world.starts)")
            #expect(world.runs.values.allSatisfy { $0 == 1 }, "\(at): \(world.runs)")
            #expect(world.runsByMember == Self.everyMemberOnce, "\(at)")
            #expect(replay.result?.members == table, "\(at)")
            #expect(world.generation.status == .active && world.deploymentStatus == .configured, "\(at)")
        }
    }
}
