import Crypto
import Foundation
import Mesh
import Synchronization

/// The coordinator's side of phone-home in one process: what the HTTP API (`ConfigServer`)
/// answers, read from the state store, and where that API meets the roll-outs (contacts,
/// fetched jobs) and the provider (tokens issued and revoked). No HTTP in here: the
/// server parses and renders, the desk decides. docs/launch.md, "Phone home".
///
/// The store is the memory that outlives the process: an instance's token hash is in its
/// recorded handle, its reported facts in the fact `_reported`, the job it fetched in
/// `_fetched_job`, what it waits for in `_waiting_for` (`Launcher.waitingFact`); so `fwd`
/// or a restarted coordinator answers the same instance with the same token.
public final class PhoneHomeDesk: Sendable {
    /// The facts an instance reported (a map), recorded on each PUT.
    public static let reportedFact = "_reported"
    /// The id of the job the instance last fetched (`job`, `at`, `from`).
    public static let fetchedFact = "_fetched_job"

    public let store: any StateStore
    private let state = Mutex(State())

    private struct State {
        var baseURL: String?
        var subscribers: [UUID: AsyncStream<DirectContact>.Continuation] = [:]
        /// Instance id -> the facts it reported (the store's `_reported`, kept at hand).
        var reported: [String: MeshValue] = [:]
        /// Instance id -> the id of the job it last fetched.
        var fetched: [String: String] = [:]
        var waiters: [UUID: Waiter] = [:]
        /// Instance id -> its token's SHA-256, from the start on: the handle that carries it
        /// is recorded only once the provider's start returned.
        var issued: [String: String] = [:]
        var revoked: Set<String> = []
    }

    private struct Waiter {
        var instanceID: String
        var jobID: String
        var continuation: CheckedContinuation<Bool, Never>
    }

    public init(store: any StateStore) {
        self.store = store
    }

    /// The HTTP API's address as instances reach it (`http://127.0.0.1:41234`), once it
    /// listens; a provider's `url:` takes precedence.
    public var baseURL: String? {
        get { self.state.withLock { $0.baseURL } }
        set { self.state.withLock { $0.baseURL = newValue } }
    }

    // MARK: - Tokens

    /// A fresh random token for the instance (256 bits, hex). Only its hash is kept.
    public func issueToken(instanceID: String) -> (token: String, sha256: String) {
        let token = SymmetricKey(size: .bits256).withUnsafeBytes { Self.hex($0) }
        let hash = Self.sha256(token)
        self.state.withLock {
            $0.issued[instanceID] = hash
            $0.revoked.remove(instanceID)
        }
        return (token, hash)
    }

    /// The instance's token is no longer accepted (its instance was stopped).
    public func revoke(instanceID: String) {
        let waiting = self.state.withLock { state in
            state.revoked.insert(instanceID)
            let ids = state.waiters.filter { $0.value.instanceID == instanceID }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        for continuation in waiting { continuation.resume(returning: false) }
    }

    public func isRevoked(instanceID: String) -> Bool {
        self.state.withLock { $0.revoked.contains(instanceID) }
    }

    public static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).withUnsafeBytes { Self.hex($0) }
    }

    private static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Compares two hex digests in time that does not depend on where they differ.
    static func sameDigest(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    // MARK: - The roll-out's side

    /// Every contact from now on (see `DirectInstanceProvider.contacts`).
    public func contacts() -> AsyncStream<DirectContact> {
        let (stream, continuation) = AsyncStream.makeStream(of: DirectContact.self)
        let id = UUID()
        self.state.withLock { $0.subscribers[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// What the instance reported, else nil (it made no contact, or only by GET without an
    /// address to go by).
    public func reportedFacts(instanceID: String) async -> MeshValue? {
        if let known = self.state.withLock({ $0.reported[instanceID] }) { return known }
        guard let uuid = UUID(uuidString: instanceID),
            let stored = try? await self.store.facts(instanceID: uuid).first(where: { $0.name == Self.reportedFact })?.value
        else { return nil }
        self.state.withLock { $0.reported[instanceID] = $0.reported[instanceID] ?? stored }
        return stored
    }

    /// Waits until the instance fetched `jobID` (answered 200), at most `timeout`. The job
    /// is in the store already, which is where the GET reads it.
    public func awaitFetch(instanceID: String, jobID: String, timeout: Duration) async -> Bool {
        if self.state.withLock({ $0.fetched[instanceID] == jobID }) { return true }
        // Fetched while another process served (a coordinator that crashed since).
        if let uuid = UUID(uuidString: instanceID),
            let fetched = try? await self.store.facts(instanceID: uuid).first(where: { $0.name == Self.fetchedFact }),
            fetched.value[path: "job"]?.stringValue == jobID
        {
            return true
        }
        let id = UUID()
        let deadline = ContinuousClock.now + timeout
        let timer = Task {
            try? await Task.sleep(until: deadline)
            self.resumeWaiter(id, with: false)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let outcome: Bool? = self.state.withLock { state in
                    if state.fetched[instanceID] == jobID { return true }
                    // Past the deadline the timer has fired already: it would not resume us.
                    if state.revoked.contains(instanceID) || Task.isCancelled || ContinuousClock.now >= deadline { return false }
                    state.waiters[id] = Waiter(instanceID: instanceID, jobID: jobID, continuation: continuation)
                    return nil
                }
                if let outcome { continuation.resume(returning: outcome) }
            }
        } onCancel: {
            self.resumeWaiter(id, with: false)
        }
    }

    private func resumeWaiter(_ id: UUID, with outcome: Bool) {
        self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: outcome)
    }

    // MARK: - The HTTP API's side

    /// `GET /configs/v1/<instance>`: the configuration once its job is ready (the fetch
    /// answers the roll-out), else what it waits for.
    public func configuration(instanceID: String, token: String?, peer: String?) async -> PhoneHomeAnswer {
        let record: InstanceRecord
        switch await self.authorize(instanceID, token: token) {
        case .success(let found): record = found
        case .failure(let refusal): return refusal.answer
        }
        let id = Launcher.instanceID(record)
        await self.contact(id, peer: peer)
        if record.state == .failed {
            return .failed("the launch gave up on \(record.member): \(record.failureReason ?? "failed")")
        }
        let jobs = (try? await self.store.jobs(instanceID: record.id)) ?? []
        if let job = jobs.filter({ $0.state != .failed }).max(by: { $0.createdAt < $1.createdAt }),
            let payload = try? job.payload.decode(as: ConfigurationJob.self)
        {
            await self.fetched(id, record: record, jobID: job.id, deployment: payload.deployment, peer: peer)
            return .ready(
                PhoneHomeConfiguration(instanceID: id, member: record.member, deployment: payload.deployment, jobID: job.id, services: payload.services))
        }
        let facts = (try? await self.store.facts(instanceID: record.id)) ?? []
        let waits = facts.first { $0.name == Launcher.waitingFact }?.value.listValue?.compactMap(\.stringValue)
        return .waiting(PhoneHomeWaiting(instanceID: id, member: record.member, waitingFor: waits))
    }

    /// `PUT /params/v1/<instance>`: the instance's facts (a map; `_` names are reserved).
    /// Merged over what it reported before, key by key; without `ipaddress`, the address
    /// the request came from stands in.
    public func report(instanceID: String, token: String?, facts: MeshValue, peer: String?) async -> PhoneHomeAnswer {
        let record: InstanceRecord
        switch await self.authorize(instanceID, token: token) {
        case .success(let found): record = found
        case .failure(let refusal): return refusal.answer
        }
        if let problem = Self.problem(with: facts) { return .invalid(problem) }
        let id = Launcher.instanceID(record)
        var merged = (await self.reportedFacts(instanceID: id))?.mapValue ?? [:]
        for (name, value) in facts.mapValue ?? [:] { merged[name] = value }
        if merged["ipaddress"] == nil, let peer { merged["ipaddress"] = .string(peer) }
        do {
            try await self.store.recordFact(instanceID: record.id, name: Self.reportedFact, value: .map(merged))
        } catch {
            return .unavailable("cannot record the facts: \(error)")
        }
        self.state.withLock { $0.reported[id] = .map(merged) }
        self.announce(DirectContact(instanceID: id, facts: .map(merged)))
        return .recorded(PhoneHomeReport(instanceID: id, member: record.member, facts: .map(merged)))
    }

    /// `GET /agent/v1/conductor`: the token of any instance not terminated may download the
    /// agent (an instance that installs it from its user data).
    public func mayDownloadAgent(token: String?) async -> Bool {
        guard let token, !token.isEmpty else { return false }
        let presented = Self.sha256(token)
        let issued = self.state.withLock { state in state.issued.filter { !state.revoked.contains($0.key) } }
        if issued.values.contains(where: { Self.sameDigest($0, presented) }) { return true }
        guard let reports = try? await self.store.status() else { return false }
        for report in reports where report.deployment.status != .terminated {
            for status in report.instances where status.instance.state != .terminated {
                if let hash = Launcher.handle(status.instance)?.tokenSHA256, Self.sameDigest(hash, presented),
                    !self.isRevoked(instanceID: Launcher.instanceID(status.instance))
                {
                    return true
                }
            }
        }
        return false
    }

    // MARK: - Steps

    private struct Refusal: Error {
        var answer: PhoneHomeAnswer
    }

    /// 404 for an instance that is not there or does not phone home; 401 for a missing or
    /// wrong token, or one revoked. The token is compared by its hash, in constant time.
    private func authorize(_ instanceID: String, token: String?) async -> Result<InstanceRecord, Refusal> {
        guard let uuid = UUID(uuidString: instanceID), let record = try? await self.store.instance(uuid) else {
            return .failure(Refusal(answer: .notFound("no instance \(instanceID)")))
        }
        let id = Launcher.instanceID(record)
        guard let expected = Launcher.handle(record)?.tokenSHA256 ?? self.state.withLock({ $0.issued[id] }) else {
            return .failure(Refusal(answer: .notFound("instance \(id) does not phone home")))
        }
        guard let token, !token.isEmpty else {
            return .failure(Refusal(answer: .unauthorized("no token: send Authorization: Bearer <CONDUCTOR_TOKEN from phone-home.env>")))
        }
        guard Self.sameDigest(expected, Self.sha256(token)) else {
            return .failure(Refusal(answer: .unauthorized("wrong token for instance \(id)")))
        }
        if record.state == .terminated || self.isRevoked(instanceID: id) {
            return .failure(Refusal(answer: .unauthorized("the token of instance \(id) was revoked: the instance was terminated")))
        }
        return .success(record)
    }

    /// Any authorized request is a contact: the instance is up. Facts: what it reported,
    /// else the address it came from.
    private func contact(_ instanceID: String, peer: String?) async {
        var facts = (await self.reportedFacts(instanceID: instanceID))?.mapValue ?? [:]
        if facts["ipaddress"] == nil, let peer { facts["ipaddress"] = .string(peer) }
        self.announce(DirectContact(instanceID: instanceID, facts: .map(facts)))
    }

    private func announce(_ contact: DirectContact) {
        let subscribers = self.state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(contact) }
    }

    private func fetched(_ instanceID: String, record: InstanceRecord, jobID: String, deployment: String?, peer: String?) async {
        let first = self.state.withLock { state in
            defer { state.fetched[instanceID] = jobID }
            return state.fetched[instanceID] != jobID
        }
        let waiting = self.state.withLock { state in
            let ids = state.waiters.filter { $0.value.instanceID == instanceID && $0.value.jobID == jobID }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        if first {
            var value: [String: MeshValue] = ["job": .string(jobID), "at": .string(ISO8601DateFormatter().string(from: Date()))]
            if let peer { value["from"] = .string(peer) }
            try? await self.store.recordFact(instanceID: record.id, name: Self.fetchedFact, value: .map(value))
            // `name@environment`, as the job names it.
            let parts = deployment?.split(separator: "@", maxSplits: 1).map(String.init) ?? []
            try? await self.store.appendAudit(
                actor: AuditActor(kind: .system, name: "phone-home"), action: "instance.fetch_config", subject: "instance:\(instanceID)",
                outcome: .succeeded, deployment: parts.count == 2 ? parts[0] : nil, environment: parts.count == 2 ? parts[1] : nil,
                detail: .map(["member": .string(record.member), "job": .string(jobID), "from": peer.map(MeshValue.string) ?? .null]))
        }
        for continuation in waiting { continuation.resume(returning: true) }
    }

    /// What is wrong with a facts document, if anything.
    static func problem(with facts: MeshValue) -> String? {
        guard let map = facts.mapValue else { return "the facts must be a JSON object, like {\"ipaddress\": \"10.0.0.5\"}" }
        for name in map.keys.sorted() {
            if name.isEmpty || name.utf8.count > 128 { return "a fact name must have 1 to 128 characters" }
            if name.hasPrefix("_") { return "fact '\(name)': names starting with '_' are the coordinator's own" }
        }
        if let address = map["ipaddress"], address.stringValue == nil { return "ipaddress must be a string" }
        return nil
    }
}

/// What the HTTP API answers (`ConfigServer` maps each to a status code).
public enum PhoneHomeAnswer: Sendable, Hashable {
    /// 200: the configuration, once the instance's job is ready.
    case ready(PhoneHomeConfiguration)
    /// 202: not yet, and what it waits for.
    case waiting(PhoneHomeWaiting)
    /// 200: the facts as now recorded.
    case recorded(PhoneHomeReport)
    /// 400
    case invalid(String)
    /// 401
    case unauthorized(String)
    /// 404
    case notFound(String)
    /// 409: the launch gave up on the instance (blocked, failed).
    case failed(String)
    /// 503: the store did not take it.
    case unavailable(String)
}

/// An instance's configuration: its services' parameters, resolved (secrets included: the
/// instance needs them).
public struct PhoneHomeConfiguration: Sendable, Hashable {
    public var instanceID: String
    public var member: String
    /// `name@environment`.
    public var deployment: String?
    public var jobID: String
    public var services: [ServiceSpec]

    /// `{"instance", "member", "deployment", "job", "services": {SERVICE: {PARAMETER: value}}}`.
    public var json: MeshValue {
        var services: [String: MeshValue] = [:]
        for service in self.services { services[service.name] = .map(service.parameters) }
        var document: [String: MeshValue] = [
            "instance": .string(self.instanceID), "member": .string(self.member), "job": .string(self.jobID), "services": .map(services),
        ]
        if let deployment = self.deployment { document["deployment"] = .string(deployment) }
        return .map(document)
    }

    /// `NAME='value'` lines a shell can source, one block per service in order (a later
    /// service's parameter of the same name wins); non-string values as JSON text, as the
    /// agent passes them to scripts.
    public var shell: String {
        var lines = ["# conductor: configuration of \(self.member) (instance \(self.instanceID), job \(self.jobID))"]
        for service in self.services {
            lines.append("# service \(service.name)")
            for (name, value) in service.environment.sorted(by: { $0.key < $1.key }) {
                lines.append("\(name)=\(Self.quoted(value))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Single-quoted for sh: `'` becomes `'\''`.
    public static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

public struct PhoneHomeWaiting: Sendable, Hashable {
    public var instanceID: String
    public var member: String
    /// What its parameters still need (`fact ipaddress of db`, `db.server to complete`);
    /// nil: the coordinator has not resolved it yet (it has just made contact).
    public var waitingFor: [String]?

    public var json: MeshValue {
        .map([
            "instance": .string(self.instanceID), "member": .string(self.member), "status": .string("waiting"),
            "waiting_for": .list((self.waitingFor ?? []).map(MeshValue.string)),
        ])
    }

    /// Comment lines, so sourcing a 202's body by mistake sets nothing.
    public var text: String {
        guard let waits = self.waitingFor, !waits.isEmpty else { return "# waiting: \(self.member) is not resolved yet\n" }
        return waits.map { "# waiting for \($0)\n" }.joined()
    }
}

public struct PhoneHomeReport: Sendable, Hashable {
    public var instanceID: String
    public var member: String
    public var facts: MeshValue

    public var json: MeshValue {
        .map(["instance": .string(self.instanceID), "member": .string(self.member), "facts": self.facts])
    }
}
