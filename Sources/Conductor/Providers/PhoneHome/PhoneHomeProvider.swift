import Foundation
import Mesh

/// `kind: phone-home`: members that run no agent. Starting one issues it a token and
/// writes `phone-home.env` (0600) into its work directory: the API's address, its instance
/// id and the token, which its user hands the instance (or an image's user data does). The
/// instance then reports its facts (`PUT /params/v1/<id>`) and polls its configuration
/// (`GET /configs/v1/<id>`) from the coordinator's HTTP API; it counts as configured once
/// it fetched the complete configuration. docs/launch.md, "Phone home".
public struct PhoneHomeProvider: DirectInstanceProvider {
    public static let kind = "phone-home"
    public static let envFile = "phone-home.env"

    public let name: String
    let settings: PhoneHomeSettings
    /// Nil: only stops instances by their handles (`terminate` in a process without the API).
    let desk: PhoneHomeDesk?

    public init(name: String, settings: PhoneHomeSettings, desk: PhoneHomeDesk) {
        self.name = name
        self.settings = settings
        self.desk = desk
    }

    /// Stops instances from their handles alone.
    init(handlesOnlyNamed name: String) {
        self.name = name
        self.settings = PhoneHomeSettings()
        self.desk = nil
    }

    /// What the handle's `value` holds.
    struct Placement: Codable {
        /// The file handed to the instance.
        var envFile: String
        var url: String

        enum CodingKeys: String, CodingKey {
            case envFile = "env_file"
            case url
        }
    }

    public func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        guard let desk = self.desk else {
            throw ProviderError(provider: self.name, "phone-home instances need the coordinator's HTTP API: give --http HOST:PORT")
        }
        guard let url = self.settings.url ?? desk.baseURL else {
            throw ProviderError(provider: self.name, "the coordinator's HTTP API is not listening yet, and the provider sets no url")
        }
        let (token, hash) = desk.issueToken(instanceID: request.instanceID)
        let path = request.workDirectory + "/" + Self.envFile
        let lines = [
            "# conductor phone-home: \(request.member) of \(request.deployment)@\(request.environment). Hand this file to the",
            "# instance; it reports its facts with PUT $CONDUCTOR_CONFIG_URL/params/v1/$CONDUCTOR_INSTANCE_ID and",
            "# fetches its configuration with GET $CONDUCTOR_CONFIG_URL/configs/v1/$CONDUCTOR_INSTANCE_ID,",
            "# each with the header 'Authorization: Bearer $CONDUCTOR_TOKEN'. docs/launch.md.",
            "CONDUCTOR_CONFIG_URL=\(PhoneHomeConfiguration.quoted(url))",
            "CONDUCTOR_INSTANCE_ID=\(PhoneHomeConfiguration.quoted(request.instanceID))",
            "CONDUCTOR_TOKEN=\(PhoneHomeConfiguration.quoted(token))",
            "CONDUCTOR_DEPLOYMENT=\(PhoneHomeConfiguration.quoted("\(request.deployment)@\(request.environment)"))",
            "CONDUCTOR_MEMBER=\(PhoneHomeConfiguration.quoted(request.member))",
        ]
        do {
            try Self.writePrivate(lines.joined(separator: "\n") + "\n", to: path)
        } catch {
            desk.revoke(instanceID: request.instanceID)
            throw ProviderError(provider: self.name, "cannot write \(path): \(error)")
        }
        let placement = String(decoding: try JSONEncoder().encode(Placement(envFile: path, url: url)), as: UTF8.self)
        return InstanceHandle(instanceID: request.instanceID, value: placement, kind: Self.kind, tokenSHA256: hash)
    }

    /// Revokes the token and removes the file that carried it.
    public func stop(_ handle: InstanceHandle) async throws {
        self.desk?.revoke(instanceID: handle.instanceID)
        if let placement = Self.placement(handle) { try? FileManager.default.removeItem(atPath: placement.envFile) }
    }

    /// Nothing runs that we could look at: alive until stopped.
    public func isAlive(_ handle: InstanceHandle) async -> Bool {
        !(self.desk?.isRevoked(instanceID: handle.instanceID) ?? false)
    }

    /// An instance whose handle was never recorded got a token nobody kept: start it again.
    public func locate(instanceID: String) async -> InstanceHandle? { nil }

    public func contacts() -> AsyncStream<DirectContact> {
        guard let desk = self.desk else { return AsyncStream { $0.finish() } }
        return desk.contacts()
    }

    public func facts(instanceID: String) async -> MeshValue? {
        await self.desk?.reportedFacts(instanceID: instanceID)
    }

    /// Answered once the instance fetched this job's configuration (HTTP 200).
    public func deliver(_ job: ConfigurationJob, instanceID: String, timeout: Duration) async -> Result<JobResult, DirectDeliveryFailure> {
        guard let desk = self.desk else { return .failure(DirectDeliveryFailure("no HTTP API to fetch it from")) }
        let started = ContinuousClock.now
        guard await desk.awaitFetch(instanceID: instanceID, jobID: job.jobID, timeout: timeout) else {
            if desk.isRevoked(instanceID: instanceID) { return .failure(DirectDeliveryFailure("the instance was stopped before it fetched its configuration")) }
            return .failure(DirectDeliveryFailure("the instance did not fetch its configuration within the job timeout (\(timeout))"))
        }
        let elapsed = started.duration(to: .now)
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        return .success(
            JobResult(
                jobID: job.jobID, status: .succeeded,
                services: job.services.map {
                    ServiceResult(name: $0.name, exitCode: 0, stdout: "fetched by the instance over HTTP", stderr: "", durationMilliseconds: milliseconds)
                }))
    }

    public func handOver(_ handle: InstanceHandle, member: String) -> String? {
        guard let placement = Self.placement(handle) else { return nil }
        return "\(member) phones home: hand it \(placement.envFile) (the API at \(placement.url), its instance id and token)"
    }

    static func placement(_ handle: InstanceHandle) -> Placement? {
        try? JSONDecoder().decode(Placement.self, from: Data(handle.value.utf8))
    }

    /// Written whole or not at all, never readable by others: it holds the token.
    static func writePrivate(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = path + ".\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fchmod(descriptor, 0o600)
        close(descriptor)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }
}
