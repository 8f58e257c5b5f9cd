import Conductor
import Foundation
import Testing

/// Which address a local member gets when other deployments already run on this machine.
struct LocalAddressPlanTests {
    static func holders(_ deployment: String, home: String, _ addresses: [String]) -> [LocalAddressPlan.Holder] {
        addresses.map { LocalAddressPlan.Holder(address: $0, deployment: deployment, home: home) }
    }

    let first = holders("webapp@default", home: "/a/deployments/webapp@default", ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"])

    @Test func theDefaultAddressesAreUsedWhenNobodyHoldsThem() {
        let plan = LocalAddressPlan(prefix: (127, 0, 0), requested: false)
        #expect(plan.choose(ordinal: 0, home: "/b/x", holders: []) == .use("127.0.0.2"))
        #expect(plan.choose(ordinal: 250, home: "/b/x", holders: []) == .use("127.0.1.2"))
    }

    @Test func aSecondDeploymentMovesToTheNextFreeRange() {
        let plan = LocalAddressPlan(prefix: (127, 0, 0), requested: false)
        let home = "/b/deployments/webapp@default"
        #expect(plan.choose(ordinal: 0, home: home, holders: self.first) == .use("127.0.1.2"))
        #expect(plan.choose(ordinal: 3, home: home, holders: self.first) == .use("127.0.1.5"))
        // A range another deployment has only begun to fill is not shared either.
        let third = Self.holders("other@default", home: "/c/deployments/other@default", ["127.0.1.2"])
        #expect(plan.choose(ordinal: 1, home: home, holders: self.first + third) == .use("127.0.2.3"))
    }

    @Test func aDeploymentKeepsToTheRangeItsRunningMembersUse() {
        let plan = LocalAddressPlan(prefix: (127, 0, 0), requested: false)
        let home = "/b/deployments/webapp@default"
        let mine = Self.holders("webapp@default", home: home, ["127.0.1.2"])
        #expect(plan.choose(ordinal: 1, home: home, holders: self.first + mine) == .use("127.0.1.3"))
        // The first deployment has gone meanwhile: the rest still join member 0 (a fwd).
        #expect(plan.choose(ordinal: 1, home: home, holders: mine) == .use("127.0.1.3"))
        // Its own older instances on the same address are not in the way.
        #expect(plan.choose(ordinal: 0, home: self.first[0].home, holders: self.first) == .use("127.0.0.2"))
    }

    @Test func requestedAddressesAnotherDeploymentHoldsAreRefused() {
        let plan = LocalAddressPlan(prefix: (127, 0, 0), requested: true)
        let blocker = Self.holders("other@default", home: "/c/deployments/other@default", ["127.0.1.9"])
        let choice = plan.choose(ordinal: 1, home: "/b/deployments/webapp@default", holders: self.first + blocker)
        #expect(choice == .taken(address: "127.0.0.3", by: self.first[1], freePrefix: "127.0.2"))
        // Not taken: the member beyond the first deployment's four.
        #expect(plan.choose(ordinal: 4, home: "/b/deployments/webapp@default", holders: self.first) == .use("127.0.0.6"))
    }
}

/// Two launches of the example on one machine, through the real binary, each with its own
/// state directory and the default addresses: each is configured with its own servers,
/// and each load balancer really spreads requests over its own two web servers. A third
/// asking for the first one's addresses is refused, naming the holder.
@Test(.timeLimit(.minutes(3))) func twoLaunchesOnTheDefaultAddressesEachAnswerWithTheirOwnServers() async throws {
    let states = [try LaunchHarness.temporaryDirectory(), try LaunchHarness.temporaryDirectory()]
    let example = LaunchTests.repository + "/examples/webapp/deployable.yml"
    do {
        var results: [LaunchResult] = []
        for state in states {
            let launch = try await CLIProcess.run(["launch", example, "--detach", "--json", "--state-dir", state, "--wait-budget", "30"], timeout: 90)
            #expect(launch.status == 0, "\(launch.stderr)")
            let result = try JSONDecoder().decode(LaunchResult.self, from: Data(launch.stdout.utf8))
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            results.append(result)
        }
        let ranges = try results.map { result in
            Set(try result.members.map { try #require($0.address).split(separator: ".").dropLast().joined(separator: ".") })
        }
        #expect(ranges.allSatisfy { $0.count == 1 }, "\(ranges)")
        #expect(ranges[0].isDisjoint(with: ranges[1]), "both launches on \(ranges[0])")

        for result in results {
            let byMember = Dictionary(uniqueKeysWithValues: result.members.map { ($0.member, $0) })
            let db = try #require(byMember["db"])
            let answer = try await ServerProbe.ask(["who", try #require(db.address), "15432"])
            #expect(answer.first.map { ServerProbe.runs(pid: $0.split(separator: " ").last, for: db) } == true, "db answered \(answer)")
            for web in ["web[0]", "web[1]"] {
                let member = try #require(byMember[web])
                let body = try await ServerProbe.ask(["get", try #require(member.address), "18080", "1"])
                #expect(body.first.map { ServerProbe.runs(pid: ServerProbe.pid(inBody: $0), for: member) } == true, "\(web) answered \(body)")
            }
            // Through the balancer: its own process answers, and four requests reach both webs.
            let lb = try #require(byMember["lb"])
            let answers = try await ServerProbe.ask(["get", try #require(lb.address), "18000", "4"])
            #expect(answers.count == 4, "\(answers)")
            #expect(answers.allSatisfy { ServerProbe.runs(pid: $0.split(separator: "\t").first, for: lb) }, "\(answers)")
            let reached = Set(answers.compactMap { $0.split(separator: "\t").last?.split(separator: " ").dropFirst().first.map(String.init) })
            #expect(reached == Set([byMember["web[0]"]?.address, byMember["web[1]"]?.address].compactMap { $0 }), "\(answers)")
        }

        // The first deployment's addresses, asked for explicitly: refused, nothing started.
        let third = try LaunchHarness.temporaryDirectory()
        let taken = try #require(ranges[0].first)
        let refused = try await CLIProcess.run(
            ["launch", example, "--exit-when-configured", "--json", "--state-dir", third, "--local-addresses", taken, "--wait-budget", "20"], timeout: 60)
        #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
        let outcome = try JSONDecoder().decode(LaunchResult.self, from: Data(refused.stdout.utf8))
        #expect(!outcome.configured)
        for member in outcome.members {
            #expect(member.state == "failed")
            #expect(member.reason?.contains("\(taken).") == true && member.reason?.contains("in use by deployment webapp@default") == true, "\(member.reason ?? "-")")
            #expect(member.reason?.contains("--local-addresses") == true, "\(member.reason ?? "-")")
            #expect(LaunchHarness.processes(carrying: member.instanceID).isEmpty)
        }
    } catch {
        await stopDetached(states)
        throw error
    }
    await stopDetached(states)
}

/// `conductor terminate` through each state directory's coordinator, then the coordinator.
private func stopDetached(_ states: [String]) async {
    for state in states {
        _ = try? await CLIProcess.run(["terminate", "webapp", "--state-dir", state], timeout: 45)
        if let data = FileManager.default.contents(atPath: state + "/coordinator.json"),
            let pid = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["pid"] as? NSNumber
        {
            kill(pid.int32Value, SIGTERM)
            _ = await CLIProcess.waitFor(seconds: 20) { !CoordinatorProcess.isLive(pid.int32Value) }
        }
    }
}

/// The example's servers asked who they are, with python3 (as the scripts are).
enum ServerProbe {
    static let code = """
        import socket, sys, urllib.request
        mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        if mode == "who":
            with socket.create_connection((host, port), 5) as s:
                s.sendall(b"WHO\\n")
                print(s.makefile().readline().strip())
        else:
            for _ in range(int(sys.argv[4])):
                with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as response:
                    print(response.headers.get("X-Balancer") or "-", response.read().decode().strip(), sep="\\t")
        """

    /// The probe's output lines; empty when it failed (nothing answered).
    static func ask(_ arguments: [String]) async throws -> [String] {
        let output = NSTemporaryDirectory() + "conductor-probe-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.code] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        if !(await CLIProcess.exits(process, within: 30)) { process.terminate() }
        _ = await CLIProcess.exits(process, within: 5)
        guard !process.isRunning, process.terminationStatus == 0 else { return [] }
        return ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// `7` in `web 127.0.0.3 (pid 7): db ok`.
    static func pid(inBody body: String) -> Substring? {
        body.split(separator: "(pid ").last?.split(separator: ")").first
    }

    /// The process is one of this member's: it carries the member's instance id.
    static func runs(pid text: Substring?, for member: MemberOutcome) -> Bool {
        guard let text, let pid = Int32(text) else { return false }
        return LaunchHarness.processes(carrying: member.instanceID).contains(pid)
    }
}
