import Foundation
import Mesh
import ProcessSupport

/// An error from the state store, with a stable code and a message a user can act on.
public struct StateStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Someone else holds the launch lock; `holder` names them.
        public static let lockHeld = Code("lock-held")
        /// The lease was taken over (expired or fenced out) before renew/release.
        public static let lockLost = Code("lock-lost")
        public static let invalidTransition = Code("invalid-transition")
        public static let notFound = Code("not-found")
        /// The request contradicts what is recorded (e.g. same member, other provider).
        public static let conflict = Code("conflict")
        /// The database file is newer than this binary, or cannot be opened.
        public static let schema = Code("schema")
        /// A standby coordinator's write, or one of an active coordinator that another has
        /// taken over from (its leadership epoch is no longer the lease's).
        public static let fenced = Code("fenced")
    }

    public var code: Code
    public var message: String
    /// For `.lockHeld`: the lease that blocked us.
    public var holder: LaunchLease?

    public init(_ code: Code, _ message: String, holder: LaunchLease? = nil) {
        self.code = code
        self.message = message
        self.holder = holder
    }

    public var description: String { message }
}

/// Options shared by every store.
public struct StateStoreOptions: Sendable {
    /// How many recent failures to keep per deployment (JeCloud's `recent_failed_deployments`).
    public var failedHistoryLimit: Int = 10
    /// Time, injected so lease expiry can be tested without sleeping.
    public var clock: @Sendable () -> Date = { Date() }
    /// Whether a pid on this host is alive; a dead holder's lock may be taken at once.
    public var isProcessAlive: @Sendable (Int32) -> Bool = StateStoreOptions.processExists
    /// This host's name, compared with a lease's host before trusting `isProcessAlive`.
    public var hostName: String = ProcessInfo.processInfo.hostName
    /// The key that seals secrets and job payloads in the state file (`StateSeal`); nil:
    /// `state.key` next to it, or `CONDUCTOR_STATE_KEY` when set.
    public var keyFile: String? = ProcessInfo.processInfo.environment["CONDUCTOR_STATE_KEY"].flatMap { $0.isEmpty ? nil : $0 }

    public init() {}

    /// A live process: a killed holder that its parent has not reaped yet (a zombie, which
    /// `kill(pid, 0)` still finds) is dead.
    public static func processExists(_ pid: Int32) -> Bool {
        ChildProcess.isRunning(pid)
    }
}

/// The coordinator's durable memory. Every step of a launch is recorded here *before* it
/// is carried out (record first, then act), so `conductor fwd` can finish what a crash
/// left half done without doing anything twice. See docs/state.md.
///
/// Every method that changes something writes its audit entry in the same transaction.
public protocol StateStore: Sendable {
    // MARK: Deployments and generations

    /// The deployment row for this name and environment, created (status `recorded`) if new.
    func ensureDeployment(_ name: String, environment: String, actor: AuditActor) async throws -> DeploymentRecord
    func deployment(_ name: String, environment: String) async throws -> DeploymentRecord?
    /// Moves the deployment's status; `failed` needs a reason, which is also appended to
    /// the capped failure history.
    @discardableResult
    func setDeploymentStatus(
        _ name: String, environment: String, to status: DeploymentStatus, reason: String?, actor: AuditActor
    ) async throws -> DeploymentRecord

    /// Records the generation a launch will roll out. If the newest pending or active
    /// generation was made from the same `documentHash` it is returned unchanged (a
    /// re-launch of the same deployable); otherwise generation N+1 is created `pending`,
    /// and an older pending one is marked failed ("superseded").
    func recordGeneration(
        deployment: String, environment: String, document: String, documentHash: String, actor: AuditActor
    ) async throws -> GenerationRecord
    /// Makes a pending generation active and the previous active one old, atomically.
    @discardableResult
    func activateGeneration(_ generationID: Int64, actor: AuditActor) async throws -> GenerationRecord
    /// Marks a pending generation failed with its reason (kept in the failure history).
    @discardableResult
    func failGeneration(_ generationID: Int64, reason: String, actor: AuditActor) async throws -> GenerationRecord
    func generations(deployment: String, environment: String) async throws -> [GenerationRecord]

    // MARK: Instances

    /// Records the intent to start `member` in a generation, before the provider is asked.
    /// Idempotent: the same (generation, member) returns the row already recorded, with
    /// its instance id, whatever its state.
    func recordInstanceIntent(
        generationID: Int64, member: String, provider: String, actor: AuditActor
    ) async throws -> InstanceRecord
    /// Moves an instance to `state` (refusing moves the table forbids), updating the
    /// handle, address and reason when given.
    @discardableResult
    func transitionInstance(
        _ id: UUID, to state: InstanceState, providerHandle: String?, address: String?, reason: String?,
        actor: AuditActor
    ) async throws -> InstanceRecord
    func instance(_ id: UUID) async throws -> InstanceRecord?
    func instances(generationID: Int64) async throws -> [InstanceRecord]

    // MARK: Jobs

    /// Records a job before it is sent. Idempotent on (instance, name): the job already
    /// recorded is returned with its original id and payload.
    func recordJobIntent(
        instanceID: UUID, name: String, payload: MeshValue, actor: AuditActor
    ) async throws -> JobRecord
    @discardableResult
    func transitionJob(_ id: String, to state: JobState, result: MeshValue?, actor: AuditActor) async throws -> JobRecord
    func jobs(instanceID: UUID) async throws -> [JobRecord]

    // MARK: Facts and secrets

    func recordFact(instanceID: UUID, name: String, value: MeshValue) async throws
    func facts(instanceID: UUID) async throws -> [FactRecord]
    /// The secret `name` of the deployment; `generate` runs only the first time, and its
    /// value is stored and returned ever after.
    func secret(
        deployment: String, environment: String, name: String, actor: AuditActor,
        generate: @Sendable () -> String
    ) async throws -> SecretRecord

    // MARK: Agents started by hand

    /// Records an invitation for the agent `instanceID` (only the token's SHA-256).
    func recordAgentInvite(instanceID: String, tokenSHA256: String, expiresAt: Date, actor: AuditActor) async throws
    /// Uses the invitation up: the agent's instance id, or nil when there is no such
    /// invitation, it expired or it was used already. At most one caller gets it.
    func redeemAgentInvite(tokenSHA256: String, actor: AuditActor) async throws -> String?

    // MARK: Launch lock

    /// Takes the launch lock of a deployment in an environment for `lease`. Throws
    /// `.lockHeld` naming the holder unless the lock is free, expired, or held by a dead
    /// process on this host.
    func acquireLaunchLock(
        deployment: String, environment: String, holder: LockHolder, lease: Duration, actor: AuditActor
    ) async throws -> LaunchLease
    /// Extends a lease we hold; `.lockLost` if it was taken over meanwhile.
    func renewLaunchLock(_ lease: LaunchLease, for duration: Duration) async throws -> LaunchLease
    func releaseLaunchLock(_ lease: LaunchLease, actor: AuditActor) async throws
    func launchLock(deployment: String, environment: String) async throws -> LaunchLease?

    // MARK: Roll-forward, status, audit

    func pendingWork(deployment: String, environment: String) async throws -> PendingWork?
    func status() async throws -> [DeploymentStatusReport]
    func status(deployment: String, environment: String) async throws -> DeploymentStatusReport?
    func recentFailures(deployment: String, environment: String) async throws -> [FailedDeploymentRecord]
    /// Appends an entry (for actions that change no other table, e.g. a refused request).
    func appendAudit(
        actor: AuditActor, action: String, subject: String, outcome: AuditOutcome,
        deployment: String?, environment: String?, detail: MeshValue?
    ) async throws
    func auditTrail(deployment: String?, environment: String?, limit: Int) async throws -> [AuditEntry]
}
