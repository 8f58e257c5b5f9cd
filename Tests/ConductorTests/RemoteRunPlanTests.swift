import Foundation
import Mesh
import MeshClient
import Testing

@testable import Conductor

private func ok(_ output: String = "", ms: Int64 = 5) -> RemoteRunPlan.Reply {
    .result(RunResult(exitCode: 0, stdout: output, stderr: "", durationMilliseconds: ms))
}

private func exited(_ code: Int) -> RemoteRunPlan.Reply {
    .result(RunResult(exitCode: code, stdout: "", stderr: "boom\n", durationMilliseconds: 5))
}

private func options(_ batch: RunBatchSize = .all, wait: Duration = .zero, reply: Duration = .seconds(10), output: Int = 1024) -> RemoteRunPlan.Options {
    RemoteRunPlan.Options(batch: batch, batchWait: wait, replyTimeout: reply, maximumOutputBytes: output)
}

/// The dispatches of a `.send`, or a failed expectation.
private func sent(_ action: RemoteRunPlan.Action, sourceLocation: SourceLocation = #_sourceLocation) -> [RemoteRunPlan.Dispatch] {
    guard case .send(let dispatches) = action else {
        Issue.record("expected .send, got \(action)", sourceLocation: sourceLocation)
        return []
    }
    return dispatches
}

@Suite struct RemoteRunPlanTests {
    @Test func batchSizesParseAndRoundUp() throws {
        #expect(try RunBatchSize(parsing: "10") == .count(10))
        #expect(try RunBatchSize(parsing: " 25% ") == .percent(25))
        for bad in ["0", "-1", "0%", "101%", "abc", "", "%", "1.5"] {
            #expect(throws: MeshError.self, "'\(bad)'") { try RunBatchSize(parsing: bad) }
        }
        #expect(RunBatchSize.percent(25).size(of: 10) == 3)
        #expect(RunBatchSize.percent(1).size(of: 10) == 1)
        #expect(RunBatchSize.percent(100).size(of: 7) == 7)
        #expect(RunBatchSize.count(4).size(of: 2) == 4)
        #expect(RunBatchSize.all.size(of: 0) == 1)
    }

    @Test func batchesRunOneAfterAnotherWithThePauseBetween() {
        var plan = RemoteRunPlan(found: ["e", "c", "a", "d", "b", "a"], options: options(.count(2), wait: .seconds(1)), runID: "r")
        #expect(plan.targetCount == 5 && plan.batchCount == 3)
        let first = sent(plan.next(now: .zero))
        #expect(first.map(\.agent) == ["a", "b"])
        #expect(first.allSatisfy { $0.deadline == .seconds(10) })
        #expect(plan.next(now: .milliseconds(1)) == .waitForReplies(until: .seconds(10)))
        #expect(plan.replyReceived(correlationID: first[0].correlationID, agent: "a", ok(), now: .milliseconds(100)) == .accepted(agent: "a"))
        // Half a batch answered: the next batch waits for the other half.
        #expect(plan.next(now: .milliseconds(100)) == .waitForReplies(until: .seconds(10)))
        plan.replyReceived(correlationID: first[1].correlationID, agent: "b", ok(), now: .milliseconds(200))
        #expect(plan.next(now: .milliseconds(200)) == .pause(until: .milliseconds(1200)))
        #expect(plan.next(now: .milliseconds(700)) == .pause(until: .milliseconds(1200)))
        let second = sent(plan.next(now: .milliseconds(1200)))
        #expect(second.map(\.agent) == ["c", "d"])
        for dispatch in second { plan.replyReceived(correlationID: dispatch.correlationID, agent: dispatch.agent, ok(), now: .milliseconds(1300)) }
        #expect(plan.next(now: .milliseconds(1300)) == .pause(until: .milliseconds(2300)))
        let third = sent(plan.next(now: .milliseconds(2400)))
        #expect(third.map(\.agent) == ["e"])
        plan.replyReceived(correlationID: third[0].correlationID, agent: "e", ok(), now: .milliseconds(2500))
        #expect(plan.next(now: .milliseconds(2500)) == .finished)
        let report = plan.report
        #expect(report.batches == 3)
        #expect(report.nodes.map(\.batch) == [1, 1, 2, 2, 3])
        #expect(report.exitStatus == 0 && report.allSucceeded)
        #expect(report.summary == "5 succeeded")
        // Correlation ids are unique within the run.
        #expect(Set((first + second + third).map(\.correlationID)).count == 5)
    }

    @Test func percentBatchesWithoutPause() {
        var plan = RemoteRunPlan(found: (0..<10).map { "n\($0)" }, options: options(.percent(30)), runID: "r")
        var batches: [[String]] = []
        var now = Duration.zero
        while case .send(let dispatches) = plan.next(now: now) {
            batches.append(dispatches.map(\.agent))
            for dispatch in dispatches { plan.replyReceived(correlationID: dispatch.correlationID, agent: dispatch.agent, ok(), now: now) }
            now += .milliseconds(10)
        }
        #expect(batches.map(\.count) == [3, 3, 3, 1])
        #expect(plan.next(now: now) == .finished)
    }

    @Test func everyNodeIsAccountedForAndTheSilentOnesAreNamed() {
        let expected: [(agent: String, label: String?)] = [("ok", "web[0]"), ("bad", "web[1]"), ("refuses", "web[2]"), ("silent", "web[3]"), ("gone", "web[4]")]
        var plan = RemoteRunPlan(found: ["silent", "refuses", "bad", "ok", "stranger"], expected: expected, options: options(reply: .seconds(3)), runID: "r")
        let dispatches = sent(plan.next(now: .zero))
        // Only expected agents run; a found agent nobody asked for does not.
        #expect(dispatches.map(\.agent) == ["ok", "bad", "refuses", "silent"])
        let id = Dictionary(uniqueKeysWithValues: dispatches.map { ($0.agent, $0.correlationID) })
        plan.replyReceived(correlationID: id["ok"], agent: "ok", ok("hi\n"), now: .seconds(1))
        plan.replyReceived(correlationID: id["bad"], agent: "bad", exited(2), now: .seconds(1))
        plan.replyReceived(correlationID: id["refuses"], agent: "refuses", .exception(ExceptionBody(code: .forbidden, text: "not trusted")), now: .seconds(1))
        // A reply claiming to be another agent, or an unknown correlation id, changes nothing.
        #expect(plan.replyReceived(correlationID: id["silent"], agent: "ok", ok(), now: .seconds(1)) == .unknown)
        #expect(plan.replyReceived(correlationID: "other-run-0", agent: "silent", ok(), now: .seconds(1)) == .unknown)
        #expect(plan.replyReceived(correlationID: nil, agent: "silent", ok(), now: .seconds(1)) == .unknown)
        #expect(plan.next(now: .seconds(2)) == .waitForReplies(until: .seconds(3)))
        // The deadline passes: silence is not success.
        #expect(plan.next(now: .milliseconds(3001)) == .finished)
        #expect(plan.replyReceived(correlationID: id["silent"], agent: "silent", ok(), now: .seconds(4)) == .late(agent: "silent"))
        #expect(plan.replyReceived(correlationID: id["ok"], agent: "ok", exited(9), now: .seconds(4)) == .late(agent: "ok"))

        let report = plan.report
        #expect(report.agents(.succeeded) == ["ok"])
        #expect(report.agents(.failed) == ["bad"])
        #expect(report.agents(.error) == ["refuses"])
        #expect(report.agents(.noAnswer) == ["silent"])
        #expect(report.agents(.notFound) == ["gone"])
        #expect(report.nodes.first { $0.agent == "ok" }?.result?.stdout == "hi\n")
        #expect(report.nodes.first { $0.agent == "gone" }?.batch == nil)
        #expect(report.exitStatus == 1)
        #expect(report.summary == "1 succeeded, 1 failed (web[1] bad), 1 answered with an error (web[2] refuses), 1 never answered (web[3] silent), 1 not found (web[4] gone)")
    }

    @Test func finishedNodesAreHandedOutOnceAsTheyFinish() {
        var plan = RemoteRunPlan(found: ["a", "b"], expected: [("a", nil), ("b", nil), ("c", nil)], options: options(reply: .seconds(1)), runID: "r")
        #expect(plan.takeFinished().map(\.agent) == ["c"])
        let dispatches = sent(plan.next(now: .zero))
        #expect(plan.takeFinished().isEmpty)
        plan.replyReceived(correlationID: dispatches[1].correlationID, agent: "b", ok(), now: .milliseconds(10))
        #expect(plan.takeFinished().map(\.status) == [.succeeded])
        #expect(plan.takeFinished().isEmpty)
        #expect(plan.next(now: .seconds(2)) == .finished)
        let last = plan.takeFinished()
        #expect(last.map(\.agent) == ["a"] && last.map(\.status) == [.noAnswer])
    }

    @Test func exitStatusSaysWhatHappened() {
        #expect(RemoteRunPlan(found: [], options: options(), runID: "r").report.exitStatus == 4)
        var missing = RemoteRunPlan(found: ["a"], expected: [("a", nil), ("b", nil)], options: options(), runID: "r")
        let dispatch = sent(missing.next(now: .zero))[0]
        missing.replyReceived(correlationID: dispatch.correlationID, agent: "a", ok(), now: .zero)
        #expect(missing.next(now: .zero) == .finished)
        #expect(missing.report.exitStatus == 3)
        // Nothing found at all of what was named: every node not found, nothing sent.
        var none = RemoteRunPlan(found: [], expected: [("a", nil)], options: options(), runID: "r")
        #expect(none.next(now: .zero) == .finished)
        #expect(none.report.exitStatus == 3 && none.report.batches == 0)
    }

    @Test func fewerFoundThanExpectedIsNotSuccess() {
        var plan = RemoteRunPlan(found: ["a", "b"], expectedCount: 3, options: options(), runID: "r")
        for dispatch in sent(plan.next(now: .zero)) {
            plan.replyReceived(correlationID: dispatch.correlationID, agent: dispatch.agent, ok(), now: .zero)
        }
        #expect(plan.next(now: .zero) == .finished)
        let report = plan.report
        #expect(report.unnamedMissing == 1 && !report.allSucceeded && report.exitStatus == 3)
        #expect(report.summary == "2 succeeded, 1 expected but not found (not named: a predicate target only counts)")
        // A failure still wins: exit 1.
        var failing = RemoteRunPlan(found: ["a"], expectedCount: 2, options: options(), runID: "r")
        let dispatch = sent(failing.next(now: .zero))[0]
        failing.replyReceived(correlationID: dispatch.correlationID, agent: "a", exited(1), now: .zero)
        #expect(failing.report.exitStatus == 1)
    }

    @Test func aCommandKilledAtItsTimeoutIsAFailure() {
        var plan = RemoteRunPlan(found: ["a"], options: options(), runID: "r")
        let dispatch = sent(plan.next(now: .zero))[0]
        plan.replyReceived(correlationID: dispatch.correlationID, agent: "a", .result(RunResult(exitCode: 0, stdout: "", stderr: "", timedOut: true, durationMilliseconds: 9)), now: .zero)
        #expect(plan.report.nodes[0].status == .failed)
        #expect(plan.report.nodes[0].error == "killed at its timeout")
    }

    @Test func sendFailureAndAbandonAccountForEveryone() {
        var plan = RemoteRunPlan(found: ["a", "b", "c"], options: options(.count(2)), runID: "r")
        let first = sent(plan.next(now: .zero))
        plan.sendFailed(correlationID: first[0].correlationID, reason: "channel closed")
        plan.abandon(reason: "cancelled")
        #expect(plan.next(now: .zero) == .finished)
        let nodes = plan.report.nodes
        #expect(nodes.map(\.status) == [.notRun, .noAnswer, .notRun])
        #expect(nodes.map(\.error) == ["request not sent: channel closed", "no reply: cancelled", "cancelled"])
        #expect(plan.report.exitStatus == 3)
        #expect(plan.report.summary == "0 succeeded, 1 never answered (b), 2 not run (a, c)")
    }

    @Test func aReturnedRequestIsNoAnswerAtOnce() {
        var plan = RemoteRunPlan(found: ["a", "b"], options: options(.count(1), reply: .seconds(60)), runID: "r")
        let first = sent(plan.next(now: .zero))
        plan.requestReturned(correlationID: first[0].correlationID, reason: "312 NO_ROUTE")
        // The next batch goes out now, not after a's 60 s deadline.
        let second = sent(plan.next(now: .milliseconds(5)))
        #expect(second.map(\.agent) == ["b"])
        // A late reply for the returned node changes nothing.
        #expect(plan.replyReceived(correlationID: first[0].correlationID, agent: "a", ok(), now: .milliseconds(6)) == .late(agent: "a"))
        let a = plan.report.nodes[0]
        #expect(a.status == .noAnswer && a.error == "unreachable: the broker returned the request (312 NO_ROUTE)")
    }

    @Test func outputIsBoundedOnACharacterBoundary() {
        let result = RunResult(exitCode: 0, stdout: "héllo", stderr: String(repeating: "x", count: 10), durationMilliseconds: 1)
        let cut = result.bounded(to: 2)
        #expect(cut.stdout == "h" && cut.stderr == "xx" && cut.truncated)
        let whole = result.bounded(to: 10)
        #expect(whole == result)
        #expect(result.bounded(to: 0).stdout.isEmpty)
        var plan = RemoteRunPlan(found: ["a"], options: options(output: 3), runID: "r")
        let dispatch = sent(plan.next(now: .zero))[0]
        plan.replyReceived(correlationID: dispatch.correlationID, agent: "a", ok("abcdef"), now: .zero)
        #expect(plan.report.nodes[0].result?.stdout == "abc")
        #expect(plan.report.nodes[0].result?.truncated == true)
    }

    @Test func membersMapToTheirRole() {
        #expect(RoleTargets.role(ofMember: "web[12]") == "web")
        #expect(RoleTargets.role(ofMember: "db") == "db")
        #expect(RoleTargets.memberOrder("web[2]", "web[10]"))
        #expect(!RoleTargets.memberOrder("web[10]", "web[2]"))
    }
}
