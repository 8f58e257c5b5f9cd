import Foundation

// Arguments and results of the agent's methods. A method request carries them in
// `_arguments`, the response in `_arguments` too (see MethodRequest / MethodResponse).

/// Method names an agent answers.
public enum MeshMethod {
    /// Run one command: `RunRequest` -> `RunResult`.
    public static let run = "run"
    /// Run a configuration job: `ConfigurationJob` -> `JobResult`. Sent to the agent's
    /// durable job inbox (`AgentName.jobInbox`), persistent, so it survives the agent being away.
    public static let applyJob = "apply_job"
    /// Collect facts now: no arguments -> `{"values": {...}}` (the host object's values).
    public static let refresh = "refresh"
}

/// What to run: an argv list (no shell involved) or a string for `/bin/sh -c`.
public enum RunCommand: Hashable, Sendable, Codable {
    case argv([String])
    case shell(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let line = try? container.decode(String.self) {
            self = .shell(line)
        } else if let argv = try? container.decode([String].self) {
            self = .argv(argv)
        } else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "command must be a string or a list of strings"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .argv(let argv): try container.encode(argv)
        case .shell(let line): try container.encode(line)
        }
    }

    /// The argv to exec: a shell string goes through `/bin/sh -c`.
    public var argv: [String] {
        switch self {
        case .argv(let argv): return argv
        case .shell(let line): return ["/bin/sh", "-c", line]
        }
    }
}

/// Arguments of `run`.
public struct RunRequest: Hashable, Sendable, Codable {
    public static let defaultTimeoutSeconds = 60.0
    public static let maximumTimeoutSeconds = 86_400.0

    public var command: RunCommand
    /// Seconds before the command is killed (SIGTERM, then SIGKILL); default 60.
    public var timeoutSeconds: Double?
    /// Extra environment variables, added to the agent's own.
    public var env: [String: String]?

    public init(command: RunCommand, timeoutSeconds: Double? = nil, env: [String: String]? = nil) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
        self.env = env
    }

    public var effectiveTimeoutSeconds: Double { self.timeoutSeconds ?? Self.defaultTimeoutSeconds }

    /// Checks what decoding cannot: an empty command, a timeout out of range, bad env names.
    public func validate() throws(MeshError) {
        switch self.command {
        case .argv(let argv):
            guard let first = argv.first, !first.isEmpty else {
                throw MeshError(.invalidArguments, "command is empty")
            }
        case .shell(let line):
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw MeshError(.invalidArguments, "command is empty")
            }
        }
        try validateTimeout(self.timeoutSeconds, maximum: Self.maximumTimeoutSeconds)
        for name in (self.env ?? [:]).keys {
            try EnvironmentVariableName.validate(name, what: "env")
        }
    }

    enum CodingKeys: String, CodingKey {
        case command
        case timeoutSeconds = "timeout_seconds"
        case env
    }
}

/// Result of `run`. `exit_code` is 128 + the signal number when the command was killed
/// by a signal (as shells report it).
public struct RunResult: Hashable, Sendable, Codable {
    /// Each of stdout and stderr is cut to this many bytes; `truncated` says it happened.
    public static let maximumOutputBytes = 1 << 20

    public var exitCode: Int
    public var stdout: String
    public var stderr: String
    public var truncated: Bool
    public var timedOut: Bool
    /// Whole milliseconds, rounded down: 0 for a command that took less than one.
    public var durationMilliseconds: Int64
    /// *Extension*: the same duration in whole microseconds, so a fast command does not read
    /// as taking no time; nil from agents that do not send it.
    public var durationMicroseconds: Int64?

    public init(
        exitCode: Int, stdout: String, stderr: String, truncated: Bool = false, timedOut: Bool = false, durationMilliseconds: Int64,
        durationMicroseconds: Int64? = nil
    ) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
        self.truncated = truncated
        self.timedOut = timedOut
        self.durationMilliseconds = durationMilliseconds
        self.durationMicroseconds = durationMicroseconds
    }

    /// A measured duration, for both fields.
    public init(exitCode: Int, stdout: String, stderr: String, truncated: Bool = false, timedOut: Bool = false, duration: Duration) {
        self.init(
            exitCode: exitCode, stdout: stdout, stderr: stderr, truncated: truncated, timedOut: timedOut,
            durationMilliseconds: duration.wholeMilliseconds, durationMicroseconds: duration.wholeMicroseconds)
    }

    /// How long the command ran, as precisely as the agent said.
    public var duration: Duration {
        self.durationMicroseconds.map { .microseconds($0) } ?? .milliseconds(self.durationMilliseconds)
    }

    enum CodingKeys: String, CodingKey {
        case exitCode = "exit_code"
        case stdout, stderr, truncated
        case timedOut = "timed_out"
        case durationMilliseconds = "duration_ms"
        case durationMicroseconds = "duration_us"
    }
}

/// How a service's script is run.
public enum ScriptKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// `/bin/sh -c SCRIPT`
    case shell
    /// `puppet apply` with the script as manifest text (when puppet is installed).
    case puppet
    /// `chef-solo` with the script as a recipe (when chef-solo is installed).
    case chef
}

/// One service of a configuration job.
public struct ServiceSpec: Hashable, Sendable, Codable {
    public var name: String
    public var script: String
    public var kind: ScriptKind
    /// Given to the script as environment variables, names as they are; a string is passed
    /// as is, a number or boolean as its JSON text, a list or map as JSON.
    public var parameters: [String: MeshValue]

    public init(name: String, script: String, kind: ScriptKind = .shell, parameters: [String: MeshValue] = [:]) {
        self.name = name
        self.script = script
        self.kind = kind
        self.parameters = parameters
    }

    /// The parameters as environment variables.
    public var environment: [String: String] {
        self.parameters.mapValues { value in
            if case .string(let text) = value { return text }
            return value.json
        }
    }

    enum CodingKeys: String, CodingKey { case name, script, kind, parameters }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try container.decode(String.self, forKey: .name)
        self.script = try container.decode(String.self, forKey: .script)
        self.kind = try container.decodeIfPresent(ScriptKind.self, forKey: .kind) ?? .shell
        self.parameters = try container.decodeIfPresent([String: MeshValue].self, forKey: .parameters) ?? [:]
    }
}

/// Arguments of `apply_job`: services run in order, stopping at the first failure.
public struct ConfigurationJob: Hashable, Sendable, Codable {
    public static let defaultTimeoutSeconds = 1800.0
    public static let maximumTimeoutSeconds = 86_400.0

    /// Unique per job: the agent remembers finished ids and answers a duplicate with the
    /// stored result instead of running it again.
    public var jobID: String
    public var deployment: String?
    public var services: [ServiceSpec]
    /// For the whole job; default 1800.
    public var timeoutSeconds: Double?

    public init(jobID: String, deployment: String? = nil, services: [ServiceSpec], timeoutSeconds: Double? = nil) {
        self.jobID = jobID
        self.deployment = deployment
        self.services = services
        self.timeoutSeconds = timeoutSeconds
    }

    public var effectiveTimeoutSeconds: Double { self.timeoutSeconds ?? Self.defaultTimeoutSeconds }

    /// Checks what decoding cannot; the error names the service that is wrong.
    public func validate() throws(MeshError) {
        guard !self.jobID.isEmpty, self.jobID.utf8.count <= 256 else {
            throw MeshError(.invalidArguments, "job_id must be 1 to 256 bytes")
        }
        guard !self.services.isEmpty else {
            throw MeshError(.invalidArguments, "job '\(self.jobID)' has no services")
        }
        var seen: Set<String> = []
        for (index, service) in self.services.enumerated() {
            guard !service.name.isEmpty else {
                throw MeshError(.invalidArguments, "services[\(index)] has an empty name")
            }
            guard seen.insert(service.name).inserted else {
                throw MeshError(.invalidArguments, "service '\(service.name)' appears twice")
            }
            for name in service.parameters.keys {
                try EnvironmentVariableName.validate(name, what: "service '\(service.name)' parameter")
            }
        }
        try validateTimeout(self.timeoutSeconds, maximum: Self.maximumTimeoutSeconds)
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case deployment, services
        case timeoutSeconds = "timeout_seconds"
    }
}

public enum JobStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case succeeded, failed
    case timedOut = "timed_out"
    /// The agent was stopped (SIGTERM) while the job ran.
    case interrupted
}

/// One service's outcome. Services after a failed one are not run and not listed.
public struct ServiceResult: Hashable, Sendable, Codable {
    public var name: String
    public var exitCode: Int
    public var stdout: String
    public var stderr: String
    public var truncated: Bool
    public var durationMilliseconds: Int64

    public init(name: String, exitCode: Int, stdout: String, stderr: String, truncated: Bool = false, durationMilliseconds: Int64) {
        self.name = name
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
        self.truncated = truncated
        self.durationMilliseconds = durationMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case name
        case exitCode = "exit_code"
        case stdout, stderr, truncated
        case durationMilliseconds = "duration_ms"
    }
}

/// Result of `apply_job`.
public struct JobResult: Hashable, Sendable, Codable {
    public var jobID: String
    public var status: JobStatus
    public var services: [ServiceResult]
    /// True when this is the stored result of an earlier delivery of the same job.
    public var replayed: Bool?

    public init(jobID: String, status: JobStatus, services: [ServiceResult], replayed: Bool? = nil) {
        self.jobID = jobID
        self.status = status
        self.services = services
        self.replayed = replayed
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case status, services, replayed
    }
}

private func validateTimeout(_ seconds: Double?, maximum: Double) throws(MeshError) {
    guard let seconds else { return }
    guard seconds > 0, seconds <= maximum else {
        throw MeshError(.invalidArguments, "timeout_seconds must be more than 0 and at most \(Int(maximum))")
    }
}
