import Foundation
import Mesh

/// The launch methods of the coordinator (`conductor:coordinator:<scope>`), their argument
/// and result bodies. A caller submits with `launch`, then polls `launch_progress` with the
/// ticket's id until it carries the result; see docs/launch.md.
public enum LaunchMethod {
    /// `LaunchSubmission` -> `LaunchTicket`.
    public static let launch = "launch"
    /// `LaunchProgressRequest` -> `LaunchProgress`.
    public static let progress = "launch_progress"
    /// `TerminateRequest` -> `TerminateResult`.
    public static let terminate = "terminate"
    /// no arguments -> `LaunchList`: what this coordinator launched (also a cheap "are you there").
    public static let list = "launches"
}

/// A launch, as a caller submits it.
public struct LaunchSubmission: Sendable, Codable, Hashable {
    public var request: LaunchRequest
    public var waitBudgetSeconds: Double
    public var jobTimeoutSeconds: Double

    public init(request: LaunchRequest, waitBudgetSeconds: Double = 30, jobTimeoutSeconds: Double = 300) {
        self.request = request
        self.waitBudgetSeconds = waitBudgetSeconds
        self.jobTimeoutSeconds = jobTimeoutSeconds
    }

    enum CodingKeys: String, CodingKey {
        case request
        case waitBudgetSeconds = "wait_budget_s"
        case jobTimeoutSeconds = "job_timeout_s"
    }
}

public struct LaunchTicket: Sendable, Codable, Hashable {
    public var launchID: String
    public var deployment: String
    public var environment: String

    enum CodingKeys: String, CodingKey {
        case deployment, environment
        case launchID = "launch_id"
    }
}

public struct LaunchProgressRequest: Sendable, Codable, Hashable {
    public var launchID: String
    /// The number of events already seen: only later ones are returned.
    public var since: Int

    public init(launchID: String, since: Int) {
        self.launchID = launchID
        self.since = since
    }

    enum CodingKeys: String, CodingKey {
        case since
        case launchID = "launch_id"
    }
}

/// Events since the caller's count and, once the launch ended, its result or why it could
/// not run.
public struct LaunchProgress: Sendable, Codable, Hashable {
    public struct Event: Sendable, Codable, Hashable {
        /// Seconds since the coordinator accepted the launch.
        public var seconds: Double
        public var text: String
    }

    public var events: [Event]
    /// The count to pass as `since` next time.
    public var next: Int
    public var result: LaunchResult?
    /// The launch ended without a result (e.g. the launch lock was held): the error text.
    public var error: String?

    public var finished: Bool { self.result != nil || self.error != nil }
}

public struct TerminateRequest: Sendable, Codable, Hashable {
    public var deployment: String
    public var environment: String

    public init(deployment: String, environment: String) {
        self.deployment = deployment
        self.environment = environment
    }
}

public struct TerminateResult: Sendable, Codable, Hashable {
    /// The members whose instances were stopped.
    public var stopped: [String]
}

public struct LaunchList: Sendable, Codable, Hashable {
    public struct Entry: Sendable, Codable, Hashable {
        public var launchID: String
        public var deployment: String
        public var environment: String
        public var finished: Bool
        public var configured: Bool

        enum CodingKeys: String, CodingKey {
            case deployment, environment, finished, configured
            case launchID = "launch_id"
        }
    }

    public var launches: [Entry]
    /// The coordinator process (for `conductor status` and people reading logs).
    public var pid: Int32
}

extension LaunchError.Code {
    /// The same deployment and environment is being launched by this coordinator already.
    public static let alreadyLaunching = LaunchError.Code("already-launching")
    /// No launch with that id (the coordinator restarted, or the id is wrong).
    public static let unknownLaunch = LaunchError.Code("unknown-launch")
    public static let shuttingDown = LaunchError.Code("shutting-down")
}
