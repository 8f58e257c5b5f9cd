import Foundation
import Testing
import TestSupport

/// scripts/testnet.sh and TestSupport's TestNet (issue 12): test hosts with real addresses,
/// each with its own sshd, hostname and /opt/conductor, reaching each other and nothing
/// else, and gone without a trace after `down`. Needs root and openssh-server; without
/// them these tests fail (TestNet.up says what is missing), they do not skip.
/// Serialized: both use the testnet `ctt` (10.231.8.0/24), which no other test uses.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct TestNetTests {
    static let name = "ctt"
    static let subnet = "10.231.8"

    @Test func hostsHaveTheirOwnNameAddressSshdAndFolder() async throws {
        let net = try await TestNet.up(hosts: 3, name: Self.name, subnet: Self.subnet, smallDisk: ["ctt-h3"])
        var leftRunning: Int32? = nil
        do {
            #expect(net.hosts.map(\.name) == ["ctt-h1", "ctt-h2", "ctt-h3"])
            #expect(net.hosts.map(\.address) == ["10.231.8.2", "10.231.8.3", "10.231.8.4"])
            #expect(net.hosts.allSatisfy { $0.port == 22 && $0.user == "root" })
            #expect(net.stateDirectory == "/tmp/conductor-testnet-ctt")

            // Each answers ssh (key and known host checked) with its own hostname.
            for host in net.hosts {
                let answer = try await net.ssh(host.name, "hostname")
                #expect(answer.status == 0 && answer.output == host.name + "\n", "ssh \(host.name) hostname: \(answer)")
            }

            // Hosts reach each other: h1 logs in to h2 over the bridge.
            let h2 = try #require(net.host("ctt-h2"))
            let hop = try await net.exec("ctt-h1", net.sshArguments(h2) + ["hostname"])
            #expect(hop.status == 0 && hop.output == "ctt-h2\n", "ssh from ctt-h1 to ctt-h2: \(hop)")

            // Nothing is routed out: no default route on a host.
            let routes = try await net.exec("ctt-h1", ["ip", "-4", "route", "show"])
            let routeLines = routes.output.split(separator: "\n")
            #expect(routes.status == 0 && routeLines.count == 1 && routeLines[0].hasPrefix("10.231.8.0/24 dev eth0 "), "routes on ctt-h1: \(routes)")

            // /opt/conductor is each host's own: written on h1, absent on h2 and here.
            let write = try await net.ssh("ctt-h1", "echo from-h1 > /opt/conductor/marker")
            #expect(write.status == 0, "\(write)")
            let onH1 = try await net.exec("ctt-h1", ["cat", "/opt/conductor/marker"])
            #expect(onH1.output == "from-h1\n")
            let onH2 = try await net.exec("ctt-h2", ["ls", "-A", "/opt/conductor"])
            #expect(onH2.status == 0 && onH2.output.isEmpty, "h2's /opt/conductor: \(onH2)")
            #expect(!FileManager.default.fileExists(atPath: "/opt/conductor/marker"))
            #expect(FileManager.default.fileExists(atPath: net.stateDirectory + "/ctt-h1/opt-conductor/marker"))

            // --small-disk: h3's /opt/conductor is a 4 MiB tmpfs, and it fills up.
            let disk = try await net.exec("ctt-h3", ["df", "-P", "-k", "/opt/conductor"])
            let size = disk.output.split(separator: "\n").last?.split(separator: " ").dropFirst().first
            #expect(size == "4096", "h3's df: \(disk)")
            let fill = try await net.exec("ctt-h3", ["sh", "-c", "head -c 5000000 /dev/zero > /opt/conductor/big"])
            #expect(fill.status != 0 && fill.output.contains("No space left on device"), "\(fill)")

            // Something left running on a host (as an agent would be), for down to stop.
            let started = try await net.ssh("ctt-h2", "setsid sleep 300 > /dev/null 2>&1 < /dev/null & echo $!")
            leftRunning = Int32(started.output.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(leftRunning.map(Self.isRunning) == true, "sleep on ctt-h2: \(started)")
        } catch {
            try? await net.down()
            throw error
        }

        try await net.down()
        let namespaces = try Self.run(["/usr/sbin/ip", "netns", "list"])
        #expect(!namespaces.contains("ctt-h"), "ip netns list after down: \(namespaces)")
        let links = try Self.run(["/usr/sbin/ip", "-br", "link"])
        #expect(!links.contains("ctt-"), "ip link after down: \(links)")
        #expect(!FileManager.default.fileExists(atPath: net.stateDirectory))
        for host in net.hosts { #expect(!Self.isRunning(host.sshdPID), "sshd of \(host.name) still running") }
        if let leftRunning { #expect(!Self.isRunning(leftRunning), "the process left on ctt-h2 survived down") }
    }

    @Test func addAndRemoveAHostAtAGivenAddress() async throws {
        let net = try await TestNet.up(hosts: 1, name: Self.name, subnet: Self.subnet)
        do {
            let grown = try await net.add("ctt-h7", address: "10.231.8.77")
            let added = try #require(grown.host("ctt-h7"))
            #expect(added.address == "10.231.8.77")
            let answer = try await grown.ssh("ctt-h7", "hostname")
            #expect(answer.output == "ctt-h7\n", "\(answer)")
            let hop = try await grown.exec("ctt-h1", grown.sshArguments(added) + ["hostname"])
            #expect(hop.output == "ctt-h7\n", "ssh from ctt-h1 to ctt-h7: \(hop)")

            let shrunk = try await grown.remove("ctt-h7")
            #expect(shrunk.hosts.map(\.name) == ["ctt-h1"])
            #expect(!Self.isRunning(added.sshdPID))
            let namespaces = try Self.run(["/usr/sbin/ip", "netns", "list"])
            #expect(!namespaces.contains("ctt-h7"), "ip netns list after remove: \(namespaces)")
        } catch {
            try? await net.down()
            throw error
        }
        try await net.down()
    }

    /// A live process (not a zombie waiting for its parent to reap it).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.range(of: ") ", options: .backwards)
        else { return false }
        return stat[close.upperBound...].first != "Z"
    }

    static func run(_ command: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let out = Pipe()
        process.standardOutput = out
        try process.runSerialized()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
