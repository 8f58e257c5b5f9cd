import Foundation
import Mesh

/// `kind: puppet`: one `puppet apply` per service, everything it writes kept in the job's
/// scratch directory, the service's parameters given to the manifest as facts.
extension JobExecutor {
    /// Where a puppet run keeps its files inside the job's scratch directory.
    struct PuppetRun {
        let directory: String
        var manifest: String { self.directory + "/service.pp" }
        /// Puppet's `vardir`; Facter loads external facts from its `facts.d` (puppet's `pluginfactdest`).
        var vardir: String { self.directory + "/var" }
        var factsFile: String { self.vardir + "/facts.d/conductor.json" }

        /// `puppet apply` as a job runs it. Every directory puppet writes (its state, cached
        /// catalog, run summary, logs, SSL) goes to the scratch directory, so concurrent jobs
        /// (several agents on one host) do not share files and nothing is left in
        /// /var/cache/puppet or /etc/puppet; the host's puppet.conf is not read. `codedir` stays
        /// the host's, so modules installed there (or in /usr/share/puppet/modules) are found.
        /// No report is stored, no colour codes reach the job's output, and
        /// `--detailed-exitcodes` says whether anything changed: 0 nothing, 2 changes,
        /// 4 failures, 6 changes and failures, 1 the manifest did not compile.
        var arguments: [String] {
            [
                "apply", "--detailed-exitcodes",
                "--confdir", self.directory + "/conf", "--vardir", self.vardir, "--logdir", self.directory + "/log",
                "--rundir", self.directory + "/run", "--publicdir", self.directory + "/public", "--ssldir", self.directory + "/ssl",
                "--logdest", "console", "--color", "false", "--no-report",
                self.manifest,
            ]
        }

        /// Writes the manifest and the facts file.
        func prepare(_ service: ServiceSpec, of job: ConfigurationJob) throws {
            try FileManager.default.createDirectory(atPath: self.vardir + "/facts.d", withIntermediateDirectories: true)
            try Data(service.script.utf8).write(to: URL(fileURLWithPath: self.manifest))
            try Data(MeshValue.map(JobExecutor.puppetFacts(for: service, of: job)).jsonBytes).write(to: URL(fileURLWithPath: self.factsFile))
        }
    }

    /// The facts a puppet manifest gets on top of Facter's own: every parameter with its JSON
    /// type kept (`$facts['db_port']` is an Integer, a list an Array), plus
    /// `conductor_job_id`, `conductor_service` and `conductor_deployment`. Names are
    /// lower-cased, as Facter would do it anyway. They reach Facter as an external facts file
    /// rather than `FACTER_<name>` variables, which Facter reads as strings only.
    public static func puppetFacts(for service: ServiceSpec, of job: ConfigurationJob) -> [String: MeshValue] {
        var facts: [String: MeshValue] = [:]
        // Sorted, so that two names differing only in case give the same fact every time.
        for name in service.parameters.keys.sorted() {
            facts[name.lowercased()] = service.parameters[name]
        }
        facts["conductor_job_id"] = .string(job.jobID)
        facts["conductor_service"] = .string(service.name)
        if let deployment = job.deployment { facts["conductor_deployment"] = .string(deployment) }
        return facts
    }
}
