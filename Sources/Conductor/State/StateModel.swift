import Foundation
import Mesh

// The records the coordinator keeps. They are plain Codable values, joined to the
// deployable model only by names (deployment, environment, member such as "web[1]"), so
// any store (SQLite now, PostgreSQL later) can return them and `conductor status --json`
// can print them as they are.

/// Where a deployment (one name in one environment) stands as a whole.
public enum DeploymentStatus: String, Codable, Sendable, CaseIterable {
    case recorded, launching, configured, failed, terminating, terminated
}

/// A generation is one version of a deployable applied to a deployment.
public enum GenerationStatus: String, Codable, Sendable, CaseIterable {
    /// Recorded, being rolled out; not yet serving.
    case pending
    /// The generation the deployment runs now; at most one per deployment.
    case active
    /// Replaced by a newer active generation.
    case old
    /// Never became active; `failureReason` says why.
    case failed
}

public enum InstanceState: String, Codable, Sendable, CaseIterable {
    case recorded, starting, started, configuring, configured, failed, terminated
}

public enum JobState: String, Codable, Sendable, CaseIterable {
    case recorded, sent, succeeded, failed
}

public struct DeploymentRecord: Codable, Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var environment: String
    public var status: DeploymentStatus
    public var failureReason: String?
    public var createdAt: Date
    public var updatedAt: Date
}

public struct GenerationRecord: Codable, Sendable, Hashable {
    public var id: Int64
    public var deploymentID: Int64
    /// 1, 2, 3… per deployment, never reused.
    public var number: Int
    public var status: GenerationStatus
    /// The deployable (after environment overlays) this generation was made from.
    public var document: String
    /// A digest of `document`, supplied by the caller; equal hashes mean "same deployable".
    public var documentHash: String
    public var failureReason: String?
    public var createdAt: Date
    public var activatedAt: Date?
}

public struct InstanceRecord: Codable, Sendable, Hashable {
    /// The instance id handed to the agent; generated once when the intent is recorded.
    public var id: UUID
    public var generationID: Int64
    /// The member of the deployable, e.g. "db[0]" or "web[2]".
    public var member: String
    public var provider: String
    /// What the provider needs to find the instance again (a pid, a VM id…).
    public var providerHandle: String?
    public var state: InstanceState
    public var address: String?
    public var failureReason: String?
    public var createdAt: Date
    public var updatedAt: Date
}

public struct JobRecord: Codable, Sendable, Hashable {
    /// Sent with the job, so an agent that sees it twice runs it once.
    public var id: String
    public var instanceID: UUID
    /// What the job does on the instance, e.g. the service name; unique per instance.
    public var name: String
    public var payload: MeshValue
    public var state: JobState
    public var result: MeshValue?
    public var createdAt: Date
    public var updatedAt: Date
}

public struct FactRecord: Codable, Sendable, Hashable {
    public var instanceID: UUID
    public var name: String
    public var value: MeshValue
    public var updatedAt: Date
}

/// A generated secret. Its value never appears in descriptions, logs or JSON output.
public struct SecretRecord: Sendable, Hashable, Encodable, CustomStringConvertible, CustomDebugStringConvertible {
    public static let mask = "********"
    public var deployment: String
    public var environment: String
    public var name: String
    public var value: String
    public var createdAt: Date

    public var description: String { "secret \(name) of \(deployment)@\(environment) = \(Self.mask)" }
    public var debugDescription: String { description }

    private enum CodingKeys: String, CodingKey { case deployment, environment, name, value, createdAt }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(deployment, forKey: .deployment)
        try container.encode(environment, forKey: .environment)
        try container.encode(name, forKey: .name)
        try container.encode(Self.mask, forKey: .value)
        try container.encode(createdAt, forKey: .createdAt)
    }
}

/// One failure kept in the capped history of a deployment.
public struct FailedDeploymentRecord: Codable, Sendable, Hashable {
    public var id: Int64
    public var deployment: String
    public var environment: String
    public var generation: Int?
    public var reason: String
    public var failedAt: Date
}

/// Who did something: the OS user running the CLI, or the AMQP user of a bus request.
public struct AuditActor: Codable, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable { case os, amqp, system }
    public var kind: Kind
    public var name: String

    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    public static func amqpUser(_ name: String) -> AuditActor { AuditActor(kind: .amqp, name: name) }
    public static let system = AuditActor(kind: .system, name: "conductor")

    /// The user running this process, from the environment (as `whoami` would print it).
    public static func currentOSUser() -> AuditActor {
        let env = ProcessInfo.processInfo.environment
        return AuditActor(kind: .os, name: env["USER"] ?? env["LOGNAME"] ?? "uid:\(getuid())")
    }

    public var description: String { "\(kind.rawValue):\(name)" }

    init?(stored: String) {
        guard let colon = stored.firstIndex(of: ":"), let kind = Kind(rawValue: String(stored[..<colon])) else {
            return nil
        }
        self.init(kind: kind, name: String(stored[stored.index(after: colon)...]))
    }
}

public enum AuditOutcome: String, Codable, Sendable {
    case succeeded, failed, refused
}

public struct AuditEntry: Codable, Sendable, Hashable {
    public var id: Int64
    public var at: Date
    public var actor: AuditActor
    /// What was done, dotted: "instance.transition", "lock.steal", "generation.activate".
    public var action: String
    /// What it was done to: "deployment:shop@prod", "instance:<uuid>", "job:<id>".
    public var subject: String
    public var outcome: AuditOutcome
    public var deployment: String?
    public var environment: String?
    public var detail: MeshValue?
}

/// Who holds the launch lock of a deployment in an environment.
public struct LaunchLease: Codable, Sendable, Hashable {
    public var deployment: String
    public var environment: String
    public var holderID: String
    public var host: String
    public var pid: Int32
    /// Grows by one at every grant, so a holder that lost its lease can be told apart
    /// from the one that took it over (ARCHITECTURE.md decision 7).
    public var fencingToken: Int64
    public var acquiredAt: Date
    public var expiresAt: Date
}

/// Who asks for the launch lock.
public struct LockHolder: Sendable, Hashable {
    public var id: String
    public var host: String
    public var pid: Int32

    public init(id: String, host: String, pid: Int32) {
        self.id = id
        self.host = host
        self.pid = pid
    }

    /// This process: a fresh id, this host's name and pid.
    public static func thisProcess(id: String = UUID().uuidString) -> LockHolder {
        LockHolder(id: id, host: ProcessInfo.processInfo.hostName, pid: getpid())
    }
}

/// What a roll-forward (`conductor fwd`) still has to do for one deployment.
public struct PendingWork: Codable, Sendable, Hashable {
    public var deployment: DeploymentRecord
    /// The newest generation that is pending, or active but not finished; nil if none.
    public var generation: GenerationRecord?
    /// Recorded, never handed to the provider: start them.
    public var instancesToStart: [InstanceRecord]
    /// Handed to the provider but not confirmed started: look them up by handle, then
    /// mark them started or start them again.
    public var instancesStarting: [InstanceRecord]
    /// Started or configuring: their jobs decide when they are configured.
    public var instancesToConfigure: [InstanceRecord]
    /// Recorded, never sent: send them (with the same job id).
    public var jobsToSend: [JobRecord]
    /// Sent, no answer recorded: wait for it or resend with the same id.
    public var jobsAwaitingResult: [JobRecord]
    /// Instances of old or failed generations still not terminated.
    public var instancesToTerminate: [InstanceRecord]

    public var isEmpty: Bool {
        instancesToStart.isEmpty && instancesStarting.isEmpty && instancesToConfigure.isEmpty
            && jobsToSend.isEmpty && jobsAwaitingResult.isEmpty && instancesToTerminate.isEmpty
    }
}

/// One instance as `conductor status` shows it.
public struct InstanceStatus: Codable, Sendable, Hashable {
    public var instance: InstanceRecord
    public var jobs: [JobRecord]
}

/// One deployment as `conductor status` shows it.
public struct DeploymentStatusReport: Codable, Sendable, Hashable {
    public var deployment: DeploymentRecord
    public var activeGeneration: GenerationRecord?
    /// A newer generation still being rolled out, if any.
    public var pendingGeneration: GenerationRecord?
    /// The generation whose instances are listed: the pending one if any, else the
    /// active one, else the newest (a first launch that failed).
    public var shownGeneration: GenerationRecord?
    public var instances: [InstanceStatus]
    /// Failed instances and jobs of those instances, with their reasons.
    public var failures: [String]
    public var recentFailures: [FailedDeploymentRecord]
    public var lock: LaunchLease?
}
