import Crypto
import Foundation
import Mesh

/// Signed `run` and `apply_job` requests (ARCHITECTURE.md decision 4: who may make an
/// agent act is enforced twice). The broker's `user_id` check says the request came from
/// the trusted login; the signature says the coordinator's key made it, for this agent,
/// recently. An agent given trusted keys (`conductor agent --trusted-key`) refuses a
/// request without a valid one, so neither a compromised node nor whoever administers a
/// shared RabbitMQ can make it run anything.
///
/// The signature travels in application headers of the `_method_request`:
///
///     conductor.sig.key      the signer's public key, "ed25519:<base64>"
///     conductor.sig.expires  milliseconds since 1970 after which the request is refused
///     conductor.sig.nonce    unique per request (a replayed `run` is refused)
///     conductor.sig          base64 Ed25519 signature of the signed text
///
/// Signed text: "conductor-request-v1", the agent's name, the method name, the expiry
/// (decimal), the nonce, and the body as canonical JSON (`MeshValue.json` of the body as
/// a reader parses it), each followed by a NUL byte.
public enum RequestSignature {
    public static let keyHeader = "conductor.sig.key"
    public static let expiresHeader = "conductor.sig.expires"
    public static let nonceHeader = "conductor.sig.nonce"
    public static let signatureHeader = "conductor.sig"

    /// How far in the future an expiry may be before it is refused (clocks differ).
    public static let maximumClockSkew: Int64 = 5 * 60 * 1000

    /// Why a request's signature is not accepted.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { self.reason }
    }

    /// The nonce and expiry of a verified request (for the replay check).
    public struct Verified: Equatable, Sendable {
        public var nonce: String
        public var expiresAt: Int64

        public init(nonce: String, expiresAt: Int64) {
            self.nonce = nonce
            self.expiresAt = expiresAt
        }
    }

    static func signedText(agent: String, method: String, expiresAt: Int64, nonce: String, body: MeshValue) -> [UInt8] {
        var text: [UInt8] = []
        for part in ["conductor-request-v1", agent, method, String(expiresAt), nonce] {
            text += Array(part.utf8)
            text.append(0)
        }
        text += body.jsonBytes
        text.append(0)
        return text
    }

    /// The body as a receiving agent will see it: written, read back, written again (a
    /// whole-number double reads back as an integer, so the text can change once).
    static func canonical(_ body: MeshValue) -> MeshValue {
        (try? MeshValue(json: body.jsonBytes)) ?? body
    }

    /// Checks `message`, a `_method_request` for `agent` calling `method`, against the
    /// trusted keys at `now` (milliseconds since 1970).
    public static func verify(
        _ message: MeshMessage, agent: String, method: String, trustedKeys: [RequestSigner.PublicKey], now: Int64
    ) throws(Refusal) -> Verified {
        let headers = message.extraHeaders
        guard let signature = headers[signatureHeader]?.stringValue else { throw Refusal(reason: "it is not signed") }
        guard let keyText = headers[keyHeader]?.stringValue, let key = try? RequestSigner.PublicKey(keyText) else {
            throw Refusal(reason: "its \(keyHeader) header is missing or not an Ed25519 key")
        }
        guard trustedKeys.contains(key) else { throw Refusal(reason: "it is signed by \(key.fingerprint), which this agent does not trust") }
        guard let expiresAt = headers[expiresHeader]?.intValue, let nonce = headers[nonceHeader]?.stringValue, !nonce.isEmpty else {
            throw Refusal(reason: "its \(expiresHeader) or \(nonceHeader) header is missing")
        }
        guard expiresAt > now else { throw Refusal(reason: "its signature expired \(now - expiresAt) ms ago") }
        guard expiresAt - now <= maximumClockSkew + RequestSigner.jobLifetime else {
            throw Refusal(reason: "its expiry is too far in the future")
        }
        guard let bytes = Data(base64Encoded: signature) else { throw Refusal(reason: "its signature is not base64") }
        let text = signedText(agent: agent, method: method, expiresAt: expiresAt, nonce: nonce, body: message.body)
        guard key.key.isValidSignature(bytes, for: text) else {
            throw Refusal(reason: "its signature does not match (altered, or signed for another agent or method)")
        }
        return Verified(nonce: nonce, expiresAt: expiresAt)
    }
}

/// The coordinator's signing key (`<state-dir>/keys/requests.ed25519`).
public struct RequestSigner: Sendable {
    /// A `run` request is good for its timeout and a minute more; a job for a day, since
    /// it may wait in a stopped agent's inbox (a job id runs once anyway).
    public static let jobLifetime: Int64 = 24 * 3600 * 1000

    public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
        /// The 32-byte key (Sendable, unlike Crypto's type).
        let raw: Data

        init(_ key: Curve25519.Signing.PublicKey) {
            self.raw = key.rawRepresentation
        }

        var key: Curve25519.Signing.PublicKey {
            // Checked when the value was made.
            try! Curve25519.Signing.PublicKey(rawRepresentation: self.raw)
        }

        /// Reads "ed25519:<base64 of the 32-byte key>".
        public init(_ text: String) throws(RequestSignature.Refusal) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.hasPrefix("ed25519:"), let data = Data(base64Encoded: String(trimmed.dropFirst(8))),
                let key = try? Curve25519.Signing.PublicKey(rawRepresentation: data)
            else { throw RequestSignature.Refusal(reason: "'\(text)' is not an Ed25519 public key (ed25519:<base64>)") }
            self.init(key)
        }

        public var description: String { "ed25519:" + self.raw.base64EncodedString() }
        /// Short, for messages: the first 12 characters of the key's base64.
        public var fingerprint: String { "ed25519:" + self.raw.base64EncodedString().prefix(12) + "…" }

    }

    /// The 32-byte seed (Sendable, unlike Crypto's type).
    let seed: Data

    var key: Curve25519.Signing.PrivateKey {
        // Checked when the value was made.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: self.seed)
    }

    public init() { self.seed = Curve25519.Signing.PrivateKey().rawRepresentation }

    public var publicKey: PublicKey { PublicKey(self.key.publicKey) }

    /// Adds the signature headers to `message`, a `_method_request` for `agent`, good
    /// until `expiresAt` (milliseconds since 1970).
    public func sign(_ message: inout MeshMessage, agent: String, method: String, expiresAt: Int64, nonce: String = UUID().uuidString) {
        let body = RequestSignature.canonical(message.body)
        message.body = body
        let text = RequestSignature.signedText(agent: agent, method: method, expiresAt: expiresAt, nonce: nonce, body: body)
        let signature = (try? self.key.signature(for: text)) ?? Data()
        message.extraHeaders[RequestSignature.keyHeader] = .string(self.publicKey.description)
        message.extraHeaders[RequestSignature.expiresHeader] = .int(expiresAt)
        message.extraHeaders[RequestSignature.nonceHeader] = .string(nonce)
        message.extraHeaders[RequestSignature.signatureHeader] = .string(signature.base64EncodedString())
    }

    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: - The key file

    /// Where a coordinator's key lives in its state directory.
    public static func path(stateDirectory: String) -> String { stateDirectory + "/keys/requests.ed25519" }

    /// The key at `path` (mode 0600, base64 of the 32-byte seed), made there first if
    /// there is none.
    public static func loadOrCreate(at path: String) throws -> RequestSigner {
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let raw = Data(base64Encoded: text), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
                throw RequestSignature.Refusal(reason: "\(path) does not hold an Ed25519 private key")
            }
            return RequestSigner(key: key)
        }
        let signer = RequestSigner()
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(
            atPath: temporary, contents: Data(signer.seed.base64EncodedString().utf8), attributes: [.posixPermissions: 0o600])
        else { throw RequestSignature.Refusal(reason: "cannot write \(temporary)") }
        // link(2), not rename: a key another process made meanwhile is kept, not replaced.
        if link(temporary, path) != 0 {
            unlink(temporary)
            return try Self.loadOrCreate(at: path)
        }
        unlink(temporary)
        return signer
    }

    init(key: Curve25519.Signing.PrivateKey) { self.seed = key.rawRepresentation }
}

/// Nonces of signed `run` requests seen and not yet expired: a replay is refused. Bounded,
/// and never by forgetting: past `capacity` the expired entries go, and when unexpired ones
/// still fill it a new nonce is refused (`.full`) until some expire. Forgetting a live
/// nonce would let its request be replayed; refusing only delays the sender, and entries
/// last at most the longest signature (a day and five minutes).
public struct ReplayGuard: Sendable {
    public enum Admission: Sendable, Hashable {
        /// Not seen before: remembered until it expires.
        case admitted
        /// Seen before and not expired: a replay.
        case replayed
        /// `capacity` unexpired nonces are remembered already.
        case full
    }

    /// Nonce -> its expiry (milliseconds since 1970).
    public private(set) var expiries: [String: Int64]
    public let capacity: Int

    public init(capacity: Int = 100_000, remembering expiries: [String: Int64] = [:]) {
        self.capacity = capacity
        self.expiries = expiries
    }

    public mutating func admit(_ verified: RequestSignature.Verified, now: Int64) -> Admission {
        if let seen = self.expiries[verified.nonce], seen > now { return .replayed }
        if self.expiries.count >= self.capacity {
            self.dropExpired(now: now)
            if self.expiries.count >= self.capacity { return .full }
        }
        self.expiries[verified.nonce] = verified.expiresAt
        return .admitted
    }

    /// Takes back an admission (the agent could not record it, so it will not act on it).
    public mutating func forget(_ nonce: String) {
        self.expiries[nonce] = nil
    }

    public mutating func dropExpired(now: Int64) {
        self.expiries = self.expiries.filter { $0.value > now }
    }
}
