import Foundation
import Mesh
import ProcessSupport

/// Runs `run` requests and configuration jobs through `ProcessRunner`: timeouts, bounded
/// output, parameters in the environment. Knows nothing about the bus.
public struct JobExecutor: Sendable {
    /// Finds an executable by name in `PATH`; replaceable so tests can pretend a tool is missing.
    public var findExecutable: @Sendable (String) -> String?
    public var outputLimit: Int
    /// Put first in the PATH of every job and run: by default the directory of the binary
    /// the agent runs from, so recipes find `conductor lock/signal/wait` whatever PATH the
    /// agent was started with.
    public var leadingPathDirectory: String?

    public init(
        findExecutable: @escaping @Sendable (String) -> String? = JobExecutor.searchPath, outputLimit: Int = RunResult.maximumOutputBytes,
        leadingPathDirectory: String? = JobExecutor.ownDirectory
    ) {
        self.findExecutable = findExecutable
        self.outputLimit = outputLimit
        self.leadingPathDirectory = leadingPathDirectory
    }

    /// The directory of this process's own binary (`/proc/self/exe`), nil if unknown.
    public static let ownDirectory: String? = {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        return (executable as NSString).deletingLastPathComponent
    }()

    /// PATH when the agent has none.
    static let defaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

    /// The agent's environment without its bus password, `leadingPathDirectory` first in
    /// PATH, then `overrides` (a PATH among them is taken as given).
    func commandEnvironment(merging overrides: [String: String]) -> [String: String] {
        var environment = Self.withoutBusPassword(ProcessInfo.processInfo.environment)
        if let directory = self.leadingPathDirectory {
            let path = environment["PATH"] ?? Self.defaultPath
            if path.split(separator: ":").first.map(String.init) != directory {
                environment["PATH"] = directory + ":" + path
            }
        }
        return environment.merging(overrides) { _, new in new }
    }

    /// How launchers give an agent its bus (with its password, in its environment).
    public static let busURLVariable = "CONDUCTOR_BROKER_URL"

    /// `environment` with the password taken out of `CONDUCTOR_BROKER_URL`
    /// (`amqp://agent.web-1@bus:5672/%2F` is left). Recipes reach the coordinator through the
    /// agent's socket (`CONDUCTOR_AGENT_SOCKET`), so the agent's login has no business in
    /// every process a job starts (their environment ends up in logs, `ps e`, crash
    /// reports); where the bus is stays readable.
    public static func withoutBusPassword(_ environment: [String: String]) -> [String: String] {
        guard let url = environment[Self.busURLVariable], let scheme = url.range(of: "://") else { return environment }
        let rest = url[scheme.upperBound...]
        let authority = rest[..<(rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex)]
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return environment }
        var environment = environment
        environment[Self.busURLVariable] = String(url[..<colon] + url[at...])
        return environment
    }

    /// Runs one command. A command that cannot be started gives exit code 127 and the
    /// reason on stderr, as a shell would.
    public func run(_ request: RunRequest) async -> RunResult {
        let command: ProcessRequest.Command
        switch request.command {
        case .shell(let line): command = .shell(line)
        case .argv(let argv): command = .executable(argv[0], arguments: Array(argv.dropFirst()))
        }
        let process = ProcessRequest(
            command,
            environment: self.commandEnvironment(merging: request.env ?? [:]),
            timeout: .milliseconds(Int64(request.effectiveTimeoutSeconds * 1000)),
            outputLimit: self.outputLimit
        )
        let started = ContinuousClock.now
        do {
            let result = try await ProcessRunner.run(process)
            return RunResult(
                exitCode: Self.exitCode(result), stdout: result.stdout.text, stderr: result.stderr.text,
                truncated: result.stdout.truncated || result.stderr.truncated, timedOut: result.timedOut,
                duration: result.duration)
        } catch {
            return RunResult(exitCode: 127, stdout: "", stderr: "\(error)\n", duration: started.duration(to: .now))
        }
    }

    /// Runs the job's services in order and stops at the first that fails or times out.
    /// When the calling task is cancelled (agent shutdown past its grace period) the
    /// running service is killed and the job is `interrupted`.
    public func apply(_ job: ConfigurationJob) async -> JobResult {
        let deadline = ContinuousClock.now + .milliseconds(Int64(job.effectiveTimeoutSeconds * 1000))
        var results: [ServiceResult] = []
        for service in job.services {
            if Task.isCancelled { return JobResult(jobID: job.jobID, status: .interrupted, services: results) }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return JobResult(jobID: job.jobID, status: .timedOut, services: results) }
            let (result, timedOut) = await self.runService(service, of: job, timeout: remaining)
            results.append(result)
            if Task.isCancelled { return JobResult(jobID: job.jobID, status: .interrupted, services: results) }
            if timedOut { return JobResult(jobID: job.jobID, status: .timedOut, services: results) }
            if result.exitCode != 0 { return JobResult(jobID: job.jobID, status: .failed, services: results) }
        }
        return JobResult(jobID: job.jobID, status: .succeeded, services: results)
    }

    /// The environment a service's script sees, on top of the agent's own: each parameter
    /// under its own name and as `CONDUCTOR_PARAM_<NAME>` (upper-cased), plus
    /// `CONDUCTOR_JOB_ID`, `CONDUCTOR_SERVICE` and `CONDUCTOR_DEPLOYMENT`.
    public static func environment(for service: ServiceSpec, of job: ConfigurationJob) -> [String: String] {
        var environment: [String: String] = [:]
        for (name, value) in service.environment {
            environment[name] = value
            environment["CONDUCTOR_PARAM_" + name.uppercased()] = value
        }
        environment["CONDUCTOR_JOB_ID"] = job.jobID
        environment["CONDUCTOR_SERVICE"] = service.name
        if let deployment = job.deployment { environment["CONDUCTOR_DEPLOYMENT"] = deployment }
        return environment
    }

    private func runService(_ service: ServiceSpec, of job: ConfigurationJob, timeout: Duration) async -> (ServiceResult, timedOut: Bool) {
        let started = ContinuousClock.now
        func failure(_ text: String) -> (ServiceResult, Bool) {
            (ServiceResult(name: service.name, exitCode: 127, stdout: "", stderr: text + "\n", durationMilliseconds: started.duration(to: .now).wholeMilliseconds), false)
        }
        var scratch: String?
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        let command: ProcessRequest.Command
        // Puppet's detailed exit codes say 2 for "changes applied": success, reported as 0.
        var successCodes: Set<Int> = [0]
        switch service.kind {
        case .shell:
            command = .shell(service.script)
        case .puppet:
            guard let puppet = self.findExecutable("puppet") else {
                return failure("service '\(service.name)' needs puppet, which is not installed on this host (no 'puppet' in PATH)")
            }
            guard let directory = Self.makeScratchDirectory() else { return failure("cannot create a temporary directory for the puppet manifest") }
            scratch = directory
            let run = PuppetRun(directory: directory)
            do {
                try run.prepare(service, of: job)
            } catch {
                return failure("cannot write the puppet manifest and facts to \(directory): \(error.localizedDescription)")
            }
            command = .executable(puppet, arguments: run.arguments)
            successCodes = [0, 2]
        case .chef:
            guard let chefSolo = self.findExecutable("chef-solo") else {
                return failure("service '\(service.name)' needs chef-solo, which is not installed on this host (no 'chef-solo' in PATH)")
            }
            guard let directory = Self.makeScratchDirectory() else { return failure("cannot create a temporary directory for the chef recipe") }
            scratch = directory
            let recipes = directory + "/cookbooks/conductor/recipes"
            do {
                try FileManager.default.createDirectory(atPath: recipes, withIntermediateDirectories: true)
                try Data(service.script.utf8).write(to: URL(fileURLWithPath: recipes + "/default.rb"))
                try Data("cookbook_path '\(directory)/cookbooks'\nfile_cache_path '\(directory)/cache'\n".utf8).write(to: URL(fileURLWithPath: directory + "/solo.rb"))
            } catch {
                return failure("cannot write the chef recipe: \(error.localizedDescription)")
            }
            command = .executable(chefSolo, arguments: ["-c", directory + "/solo.rb", "-o", "recipe[conductor]"])
        }
        let process = ProcessRequest(
            command,
            environment: self.commandEnvironment(merging: Self.environment(for: service, of: job)),
            timeout: timeout,
            outputLimit: self.outputLimit
        )
        do {
            let result = try await ProcessRunner.run(process)
            var exitCode = Self.exitCode(result)
            if successCodes.contains(exitCode) { exitCode = 0 }
            return (
                ServiceResult(
                    name: service.name, exitCode: exitCode, stdout: result.stdout.text, stderr: result.stderr.text,
                    truncated: result.stdout.truncated || result.stderr.truncated, durationMilliseconds: result.duration.wholeMilliseconds),
                result.timedOut
            )
        } catch {
            return failure("\(error)")
        }
    }

    /// Every directory of `PATH` (or the usual ones when unset), first executable wins.
    public static let searchPath: @Sendable (String) -> String? = { name in
        let path = ProcessInfo.processInfo.environment["PATH"] ?? JobExecutor.defaultPath
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Owner-only: the manifest and its facts may carry secrets.
    private static func makeScratchDirectory() -> String? {
        let path = NSTemporaryDirectory() + "conductor-job-" + UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return path
        } catch {
            return nil
        }
    }

    static func exitCode(_ result: ProcessResult) -> Int {
        switch result.termination {
        case .exited(let code): return Int(code)
        case .signaled(let signal): return 128 + Int(signal)
        case .unknown: return 255
        }
    }
}
