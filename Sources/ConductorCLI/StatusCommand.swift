import ArgumentParser
import Conductor
import Foundation
import Mesh

/// `conductor status`: deployments, their generation, and per member its state and what
/// it still waits for (from whom), from the state store.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show deployments, generations and, per member, its state and what it waits for.",
        discussion: "Reads the coordinator state (--state-dir); needs no bus. Also names the `conductor serve` recorded there, if it runs. See docs/launch.md."
    )

    @Argument(help: "Only this deployment.")
    var deployment: String?

    @OptionGroup var state: StateOptions

    @Flag(name: .long, help: "Print the status as JSON.")
    var json = false

    struct MemberStatus: Codable {
        var member: String
        var instanceID: String
        var state: String
        var address: String?
        var reason: String?
        var waitingFor: [String]
        var jobs: [String]
    }

    struct DeploymentStatusOutput: Codable {
        var deployment: String
        var environment: String
        var status: String
        var generation: Int?
        var generationStatus: String?
        /// Why the shown generation failed (each member that did not configure, and why):
        /// kept after its instances are terminated, when their own reasons are gone.
        var generationFailureReason: String?
        var failureReason: String?
        var members: [MemberStatus]
        var recentFailures: [String]
    }

    func run() async throws {
        guard try self.state.location().exists else {
            if self.json { print("[]") } else { print("no deployments (no state in \(self.state.directory))") }
            return
        }
        let store: any CoordinatorStateStore
        do {
            store = try await self.state.openStore()
        } catch {
            FileHandle.standardError.write(Data("conductor status: \(error)\n".utf8))
            throw ExitCode(1)
        }
        var output: [DeploymentStatusOutput] = []
        for report in try await store.status() where self.deployment == nil || report.deployment.name == self.deployment {
            var members: [MemberStatus] = []
            for item in report.instances {
                let facts = try await store.facts(instanceID: item.instance.id)
                let waits = facts.first { $0.name == Launcher.waitingFact }?.value.listValue?.compactMap(\.stringValue) ?? []
                members.append(
                    MemberStatus(
                        member: item.instance.member, instanceID: item.instance.id.uuidString.lowercased(), state: item.instance.state.rawValue,
                        // A phone-home instance's address is known from its facts only.
                        address: item.instance.address ?? facts.first { $0.name == "ipaddress" }?.value.stringValue, reason: item.instance.failureReason,
                        waitingFor: item.instance.state == .configured ? [] : waits,
                        jobs: item.jobs.map { "\($0.name) \($0.id) \($0.state.rawValue)" }))
            }
            output.append(
                DeploymentStatusOutput(
                    deployment: report.deployment.name, environment: report.deployment.environment, status: report.deployment.status.rawValue,
                    generation: report.shownGeneration?.number, generationStatus: report.shownGeneration?.status.rawValue,
                    generationFailureReason: report.shownGeneration?.failureReason,
                    failureReason: report.deployment.failureReason, members: members,
                    recentFailures: report.recentFailures.map { "generation \($0.generation.map(String.init) ?? "-"): \($0.reason)" }))
        }
        if self.json {
            print(try LaunchCommand.json(output))
            return
        }
        if let coordinator = CoordinatorRecord.live(stateDirectory: self.state.directory) {
            print("coordinator conductor:coordinator:\(coordinator.scope) serving (pid \(coordinator.pid), bus \(redacted(coordinator.broker)))")
        }
        if output.isEmpty { print("no deployments") }
        for deployment in output {
            print("\(deployment.deployment)@\(deployment.environment): \(deployment.status), generation \(deployment.generation.map(String.init) ?? "-") (\(deployment.generationStatus ?? "-"))")
            if let reason = deployment.failureReason { print("  reason: \(reason)") }
            if let reason = deployment.generationFailureReason, reason != deployment.failureReason {
                print("  generation \(deployment.generation.map(String.init) ?? "-") failed: \(reason)")
            }
            for member in deployment.members {
                print("  \(member.member.padding(toLength: 10, withPad: " ", startingAt: 0)) \(member.state.padding(toLength: 12, withPad: " ", startingAt: 0)) \(member.address ?? "-")")
                if let reason = member.reason { print("      reason: \(reason)") }
                for job in member.jobs where job.hasSuffix(" \(JobState.failed.rawValue)") { print("      job \(job)") }
                if !member.waitingFor.isEmpty { print("      waiting for: \(member.waitingFor.joined(separator: ", "))") }
            }
        }
    }
}
