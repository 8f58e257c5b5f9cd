import AMQPClient
import Foundation
import Mesh
import MeshClient

/// What to launch: a deployable file, its environment and `--set` values.
public struct LaunchRequest: Sendable, Codable, Hashable {
    public struct Setting: Sendable, Codable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Absolute, so `conductor fwd` can read it again from anywhere.
    public var file: String
    public var environment: String?
    public var settings: [Setting]
    /// The local provider's address prefix (`--local-addresses`), when one was asked for, so
    /// `conductor fwd` starts any instance the crash left unstarted on the same /24. Without
    /// it the provider finds a free /24, and the deployment's running members keep fwd on theirs.
    public var localAddresses: String?

    public init(file: String, environment: String? = nil, settings: [Setting] = [], localAddresses: String? = nil) {
        self.file = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        self.environment = environment
        self.settings = settings
        self.localAddresses = localAddresses
    }
}

/// How the coordinator reaches the bus and how long it waits.
public struct LaunchOptions: Sendable {
    /// Holds `state.sqlite` and `deployments/<name>@<environment>/<member>/`.
    public var stateDirectory: String
    /// The coordinator's own connection (its user is the agents' trusted user).
    public var console: AMQPConnectionConfiguration
    /// What agents connect with.
    public var agentBrokerURL: String
    /// Whether instances on other machines (SSH hosts, EC2) can reach that bus.
    public var busReach: BusReach = .loopbackOnly
    /// The AMQP user whose jobs the agents accept: the user the coordinator logs in as
    /// (`console.username`) unless set. Brokers stamp and check `user_id`, so this must be
    /// the login that sends the jobs.
    public var trustedUser: String
    /// How long a member may wait for its agent or its references before it is reported
    /// blocked, counted from when every member was started (or found, or failed).
    public var waitBudget: Duration
    /// How long one configuration job may run.
    public var jobTimeout: Duration
    public var actor: AuditActor
    /// Signs jobs and run requests; agents the launch starts require its signature. By
    /// default the key in the state directory (`<state-dir>/keys/requests.ed25519`,
    /// made on first use).
    public var signer: RequestSigner?
    /// Makes each agent its own broker login before it starts, removes it when it is
    /// terminated (`AgentIdentity`), and has the coordinator accept an agent's answers only
    /// under that login. Nil: agents share `agentBrokerURL`'s login and answers are taken
    /// as they come (buses whose users are not ours to manage; tests of the old ways).
    public var accounts: BusAccounts?

    public init(
        stateDirectory: String, console: AMQPConnectionConfiguration, agentBrokerURL: String,
        waitBudget: Duration = .seconds(30), jobTimeout: Duration = .seconds(300),
        actor: AuditActor = .currentOSUser(), trustedUser: String? = nil, busReach: BusReach = .loopbackOnly, accounts: BusAccounts? = nil
    ) {
        self.busReach = busReach
        self.accounts = accounts
        self.stateDirectory = stateDirectory
        self.console = console
        self.agentBrokerURL = agentBrokerURL
        self.trustedUser = trustedUser ?? console.username
        self.waitBudget = waitBudget
        self.jobTimeout = jobTimeout
        self.actor = actor
        self.signer = try? RequestSigner.loadOrCreate(at: RequestSigner.path(stateDirectory: stateDirectory))
    }

    public var stateFile: String { self.stateDirectory + "/state.sqlite" }

    /// Agents with logins of their own are heard only under them.
    var answerCheck: AnswerCheck { self.accounts == nil ? .any : .ownLogins }
}

/// One line of live progress.
public enum LaunchEvent: Sendable, Hashable, CustomStringConvertible {
    case recorded(deployment: String, environment: String, generation: Int, members: Int)
    case starting(member: String, instanceID: String)
    case started(member: String, address: String?, reused: Bool)
    case agentUp(member: String, address: String?)
    case waiting(member: String, on: [String])
    case configuring(member: String, jobID: String)
    case configured(member: String)
    /// A fact its parameters referenced changed after it was configured: a new job.
    case reconfiguring(member: String, jobID: String, changed: [String])
    case failed(member: String, reason: String)
    /// What its user has to do (a phone-home instance: hand it its file).
    case instructions(member: String, text: String)
    case finished(configured: Bool)

    public var description: String {
        switch self {
        case .recorded(let deployment, let environment, let generation, let members):
            "recorded \(deployment)@\(environment) generation \(generation): \(members) member(s)"
        case .starting(let member, let id): "launching \(member) (instance \(id))"
        case .started(let member, let address, let reused):
            "\(reused ? "found running" : "started") \(member)\(address.map { " at \($0)" } ?? "")"
        case .agentUp(let member, let address): "\(member) is up\(address.map { ", ipaddress \($0)" } ?? "")"
        case .waiting(let member, let on): "\(member) waiting on \(on.joined(separator: ", "))"
        case .configuring(let member, let job): "configuring \(member) (job \(job))"
        case .configured(let member): "\(member) configured"
        case .reconfiguring(let member, let job, let changed):
            "re-configuring \(member) (job \(job)): \(changed.joined(separator: ", ")) changed"
        case .failed(let member, let reason): "\(member) FAILED: \(reason)"
        case .instructions(_, let text): text
        case .finished(let configured): configured ? "done: every member configured" : "failed: see the table"
        }
    }
}

/// One member after a launch, for the final table and `--json`.
public struct MemberOutcome: Sendable, Codable, Hashable {
    public struct Service: Sendable, Codable, Hashable {
        public var name: String
        /// Secrets masked.
        public var parameters: [String: String]
        public var exitCode: Int?
        /// The last line of the script's output (stdout, else stderr).
        public var output: String?
    }

    public var member: String
    public var instanceID: String
    public var address: String?
    /// `configured`, `failed` or `blocked`; `pending` only in a roll-out a test interrupted.
    public var state: String
    public var services: [Service]
    public var reason: String?
    /// What it still waited for, naming the source member.
    public var waitingFor: [String]
}

public struct LaunchResult: Sendable, Codable, Hashable {
    public var deployment: String
    public var environment: String
    public var generation: Int
    public var configured: Bool
    public var members: [MemberOutcome]
}

public struct LaunchError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The deployable did not pass `validate`; nothing was started or recorded.
        public static let invalid = Code("invalid")
        public static let unknownProvider = Code("unknown-provider")
        public static let nothingPending = Code("nothing-pending")
        public static let notFound = Code("not-found")
        /// A request that cannot be carried out as given (a malformed option).
        public static let invalidRequest = Code("invalid-request")
        /// The bus's management API would not make or remove an agent's login.
        public static let busAdministration = Code("bus-administration")
    }

    public var code: Code
    public var message: String
    public var errors: [DeployableError]

    public init(_ code: Code, _ message: String, errors: [DeployableError] = []) {
        self.code = code
        self.message = message
        self.errors = errors
    }

    public var description: String { message }
}
