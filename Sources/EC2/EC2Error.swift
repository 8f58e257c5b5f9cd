/// A failed EC2 call: what EC2 answered (code, message, request id, HTTP status), or why
/// it could not be reached, classified into a ``Kind`` that decides retries and what an
/// operator is told.
public struct EC2Error: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// Too many requests (RequestLimitExceeded, Throttling, 503 SlowDown...): retried.
        case throttled
        /// The credentials were refused or lack a permission: not retried.
        case auth
        /// No capacity or an account limit reached: not retried.
        case capacity
        /// An id that does not exist (InvalidInstanceID.NotFound...): not retried.
        case notFound
        /// Any other refusal of the request (4xx): not retried.
        case invalid
        /// EC2 failed on its side (5xx): retried on idempotent calls.
        case server
        /// EC2 was not reached or did not answer in time: retried on idempotent calls.
        case transport
    }

    public let kind: Kind
    /// EC2's error code ("AuthFailure"); for transport errors "ConnectionFailed" or
    /// "Timeout"; for a non-XML error answer "HTTP<status>".
    public let code: String
    public let message: String
    public let requestID: String?
    /// Nil when no answer came.
    public let httpStatus: Int?
    /// The Query API action ("RunInstances").
    public let action: String
    /// The endpoint called.
    public let endpoint: String
    /// How many requests were sent before giving up (1 when not retried).
    public var attempts: Int

    public init(
        kind: Kind, code: String, message: String, requestID: String? = nil, httpStatus: Int? = nil,
        action: String, endpoint: String, attempts: Int = 1
    ) {
        self.kind = kind
        self.code = code
        self.message = message
        self.requestID = requestID
        self.httpStatus = httpStatus
        self.action = action
        self.endpoint = endpoint
        self.attempts = attempts
    }

    /// An error answer from EC2, classified by its code and status.
    public init(code: String, message: String, requestID: String?, httpStatus: Int, action: String, endpoint: String) {
        self.init(
            kind: Self.classify(code: code, httpStatus: httpStatus), code: code, message: message,
            requestID: requestID, httpStatus: httpStatus, action: action, endpoint: endpoint
        )
    }

    public var isThrottle: Bool { self.kind == .throttled }

    /// Throttled calls are refused before anything happens, so any call may be retried;
    /// a server failure or a lost connection may have left the call done, so only an
    /// idempotent call is retried after one.
    public func isRetryable(idempotent: Bool) -> Bool {
        switch self.kind {
        case .throttled: true
        case .server, .transport: idempotent
        case .auth, .capacity, .notFound, .invalid: false
        }
    }

    // MARK: - Classification

    static let throttleCodes: Set<String> = [
        "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
        "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "BandwidthLimitExceeded",
        "RequestLimitExceededException", "TransactionInProgressException",
    ]

    static let authCodes: Set<String> = [
        "AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
        "OptInRequired", "Blocked", "PendingVerification", "IncompleteSignature",
        "MissingAuthenticationToken", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
        "InvalidAccessKeyId", "AccessDenied", "AccessDeniedException", "UnrecognizedClientException",
        "InvalidToken", "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
    ]

    static let capacityCodes: Set<String> = [
        "InsufficientInstanceCapacity", "InstanceLimitExceeded", "InsufficientAddressCapacity",
        "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity", "InsufficientCapacity",
        "InsufficientCapacityOnHost", "InsufficientFreeAddressesInSubnet", "VcpuLimitExceeded",
        "MaxSpotInstanceCountExceeded", "AddressLimitExceeded", "VpcLimitExceeded",
        "SubnetLimitExceeded", "ResourceLimitExceeded", "TagLimitExceeded", "VolumeLimitExceeded",
        "SecurityGroupLimitExceeded", "MaxIOPSLimitExceeded",
    ]

    static let serverCodes: Set<String> = [
        "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
    ]

    /// The kind of an error answer: by code first (EC2 answers throttling with 503 and
    /// some refusals with 5xx-looking codes), then by HTTP status.
    public static func classify(code: String, httpStatus: Int) -> Kind {
        if Self.throttleCodes.contains(code) || httpStatus == 429 { return .throttled }
        if Self.authCodes.contains(code) { return .auth }
        if Self.capacityCodes.contains(code) { return .capacity }
        if code.hasSuffix(".NotFound") || code.hasSuffix("NotFound") { return .notFound }
        if Self.serverCodes.contains(code) || httpStatus >= 500 { return .server }
        if httpStatus == 401 || httpStatus == 403 { return .auth }
        return .invalid
    }

    // MARK: - What an operator reads

    public var description: String {
        let detail = self.message.isEmpty ? "" : ": \(self.message)"
        let tail = self.tail
        switch self.kind {
        case .throttled:
            return "EC2 throttled \(self.action) (\(self.code))\(detail)\(tail); this account is sending EC2 too many requests, try again later"
        case .auth:
            switch self.code {
            case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
                return "EC2 refused \(self.action) for these credentials (\(self.code))\(detail)\(tail); the IAM user or role needs permission for ec2:\(self.action)"
            case "OptInRequired":
                return "EC2 refused \(self.action) (\(self.code))\(detail)\(tail); the account is not subscribed to EC2 or has not opted in to this region"
            case "RequestExpired":
                return "EC2 refused \(self.action) as too old (\(self.code))\(detail)\(tail); check this machine's clock"
            default:
                return "EC2 refused the credentials (\(self.code))\(detail)\(tail); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the profile in ~/.aws/credentials"
            }
        case .capacity:
            return "EC2 has no room for \(self.action) (\(self.code))\(detail)\(tail); try another instance type or availability zone, or raise the account's limit"
        case .notFound:
            return "EC2 does not know what \(self.action) named (\(self.code))\(detail)\(tail)"
        case .invalid:
            return "EC2 rejected \(self.action) (\(self.code), HTTP \(self.httpStatus.map(String.init) ?? "?"))\(detail)\(tail)"
        case .server:
            return "EC2 failed on its side during \(self.action) (\(self.code), HTTP \(self.httpStatus.map(String.init) ?? "?"))\(detail)\(tail)"
        case .transport:
            return "could not reach EC2 at \(self.endpoint) for \(self.action)\(detail)\(tail); check the region, the network, and AWS_ENDPOINT_URL_EC2 if set"
        }
    }

    private var tail: String {
        var parts: [String] = []
        if let requestID { parts.append("request id \(requestID)") }
        if self.attempts > 1 { parts.append("after \(self.attempts) attempts") }
        return parts.isEmpty ? "" : " [\(parts.joined(separator: ", "))]"
    }
}
