import Agent
import Foundation
import Mesh
import Testing

/// `kind: puppet` jobs run by a real agent with the real `puppet apply` (Debian's `puppet`,
/// which scripts/test.sh installs). Without puppet these tests fail, they do not skip.
/// The embedded broker only: puppet does not care which bus brought the job, and each apply
/// costs seconds.
@Suite("Puppet jobs", .timeLimit(.minutes(3)))
struct PuppetJobTests {
    /// One apply takes 3 s on an idle 2-core machine, several times that beside a build.
    static let jobTimeout = Duration.seconds(90)

    static func requirePuppet() throws {
        try #require(
            JobExecutor.searchPath("puppet") != nil,
            "puppet is not installed (no 'puppet' in PATH): scripts/test.sh installs it, or run apt-get install puppet")
    }

    static func puppetJob(_ manifest: String, parameters: [String: MeshValue] = [:]) -> ConfigurationJob {
        ConfigurationJob(
            jobID: "puppet-\(UUID().uuidString)", deployment: "d1",
            services: [ServiceSpec(name: "motd", script: manifest, kind: .puppet, parameters: parameters)])
    }

    /// What the conductor reports as a failed job's reason: the last line of its stderr.
    static func reason(_ result: JobResult) -> String {
        result.services.last?.stderr.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
    }

    @Test func parametersReachTheManifestAsTypedFactsAndARerunThatChangesNothingSucceeds() async throws {
        try Self.requirePuppet()
        try await EndToEndAgentTests.withBusAndAgent(.embedded, prefix: "puppet") { _, agent, console, directory in
            let manifest = """
                file { "${facts['out_dir']}/motd":
                  content => "db is ${facts['db_host']}:${facts['db_port']} (${type($facts['db_port'], 'generalized')}), \
                second backend ${facts['backends'][1]}, service ${facts['conductor_service']}\\n",
                }
                notice("vardir ${settings::vardir}")
                """
            let parameters: [String: MeshValue] = [
                "out_dir": .string(directory.path), "db_host": "10.0.0.7", "db_port": 5432, "backends": ["10.0.0.8", "10.0.0.9"],
            ]
            let first = try await EndToEndAgentTests.sendJob(
                Self.puppetJob(manifest, parameters: parameters), to: agent.name, console: console, timeout: Self.jobTimeout)
            #expect(first.status == .succeeded, "\(first.services)")
            // Exit 2 ("changes applied") is reported as 0.
            #expect(first.services.map(\.exitCode) == [0])
            #expect(directory.read("motd") == "db is 10.0.0.7:5432 (Integer), second backend 10.0.0.9, service motd\n")
            let stdout = first.services.first?.stdout ?? ""
            #expect(stdout.contains("File[\(directory.path)/motd]/ensure: defined content"), "\(stdout)")
            #expect(!stdout.contains("\u{1B}["), "colour codes in the output: \(stdout)")

            // Puppet's state lived in the job's scratch directory, which is gone.
            let vardir = try #require(stdout.split(separator: "\n").first { $0.contains("vardir ") }.map { String($0.split(separator: " ").last ?? "") })
            #expect(vardir.hasSuffix("/var") && vardir.contains("conductor-job-"), "\(vardir)")
            #expect(!FileManager.default.fileExists(atPath: vardir))

            // The same manifest again: puppet changes nothing (exit 0), still a success.
            let second = try await EndToEndAgentTests.sendJob(
                Self.puppetJob(manifest, parameters: parameters), to: agent.name, console: console, timeout: Self.jobTimeout)
            #expect(second.status == .succeeded, "\(second.services)")
            #expect(second.services.map(\.exitCode) == [0])
            #expect(second.services.first?.stdout.contains("/motd]") == false, "\(second.services)")
            #expect(directory.read("motd") == "db is 10.0.0.7:5432 (Integer), second backend 10.0.0.9, service motd\n")
        }
    }

    @Test func aManifestThatDoesNotCompileFailsTheJobWithPuppetsMessage() async throws {
        try Self.requirePuppet()
        try await EndToEndAgentTests.withBusAndAgent(.embedded, prefix: "puppet-parse") { _, agent, console, directory in
            var job = Self.puppetJob(#"file { "${facts['out_dir']}/never": content => "#, parameters: ["out_dir": .string(directory.path)])
            job.services.append(ServiceSpec(name: "after", script: "touch \(directory.path)/after-ran"))
            let result = try await EndToEndAgentTests.sendJob(job, to: agent.name, console: console, timeout: Self.jobTimeout)
            #expect(result.status == .failed)
            #expect(result.services.map(\.exitCode) == [1])
            #expect(Self.reason(result).contains("Error: Could not parse for environment production: Syntax error at end of input"), "\(result.services)")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/after-ran"))
        }
    }

    /// `--detailed-exitcodes` 4 (failures) and 6 (changes and failures) both fail the job,
    /// with puppet's exit code and its error as the reason.
    @Test func failedResourcesFailTheJobWithTheirError() async throws {
        try Self.requirePuppet()
        try await EndToEndAgentTests.withBusAndAgent(.embedded, prefix: "puppet-fail") { _, agent, console, directory in
            let broken = #"file { "${facts['out_dir']}/no-such-dir/x": content => "x" }"#
            let parameters: [String: MeshValue] = ["out_dir": .string(directory.path)]
            let failing = try await EndToEndAgentTests.sendJob(
                Self.puppetJob(broken, parameters: parameters), to: agent.name, console: console, timeout: Self.jobTimeout)
            #expect(failing.status == .failed)
            #expect(failing.services.map(\.exitCode) == [4])
            #expect(Self.reason(failing).contains("Error: /Stage[main]/Main/File[\(directory.path)/no-such-dir/x]/ensure: change from 'absent' to 'file' failed"), "\(failing.services)")

            let changedAndFailing = try await EndToEndAgentTests.sendJob(
                Self.puppetJob(#"file { "${facts['out_dir']}/done": content => "done" }"# + "\n" + broken, parameters: parameters),
                to: agent.name, console: console, timeout: Self.jobTimeout)
            #expect(changedAndFailing.status == .failed)
            #expect(changedAndFailing.services.map(\.exitCode) == [6])
            #expect(directory.read("done") == "done")
            #expect(Self.reason(changedAndFailing).contains("File[\(directory.path)/no-such-dir/x]/ensure: change from 'absent' to 'file' failed"), "\(changedAndFailing.services)")
        }
    }

    @Test func factsKeepTypesAndLowerCaseNames() {
        let job = ConfigurationJob(jobID: "j1", deployment: "d@prod", services: [
            ServiceSpec(name: "app", script: "", kind: .puppet, parameters: ["DB_Host": "10.0.0.7", "port": 5432, "tls": true, "backends": ["a", "b"]]),
        ])
        #expect(JobExecutor.puppetFacts(for: job.services[0], of: job) == [
            "db_host": "10.0.0.7", "port": 5432, "tls": true, "backends": ["a", "b"],
            "conductor_job_id": "j1", "conductor_service": "app", "conductor_deployment": "d@prod",
        ])
    }
}
