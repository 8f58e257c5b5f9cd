import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Where and as whom the client calls EC2, and how patiently.
public struct EC2Configuration: Sendable {
    /// The Query API version every call names.
    public static let apiVersion = "2016-11-15"

    public var region: String
    public var endpoint: URL
    public var credentials: AWSCredentials
    /// The longest one request may take, from connecting to the last byte of the answer.
    public var requestTimeout: Duration
    public var retry: EC2RetryPolicy

    /// `endpoint` nil: `https://ec2.REGION.amazonaws.com`.
    public init(
        region: String, credentials: AWSCredentials, endpoint: URL? = nil,
        requestTimeout: Duration = .seconds(30), retry: EC2RetryPolicy = EC2RetryPolicy()
    ) {
        self.region = region
        self.credentials = credentials
        self.endpoint = endpoint ?? Self.regionalEndpoint(region)
        self.requestTimeout = requestTimeout
        self.retry = retry
    }

    /// Region, credentials and endpoint as the AWS tools find them:
    /// - region: `region`, else AWS_REGION / AWS_DEFAULT_REGION, else the config file's
    ///   profile (see ``AWSConfigurationResolver/region(_:profile:environment:)``);
    /// - credentials: the environment, else the shared credentials and config files
    ///   (see ``AWSConfigurationResolver/credentials(profile:environment:)``);
    /// - endpoint: `endpoint`, else AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL, else
    ///   `https://ec2.REGION.amazonaws.com`.
    public static func resolve(
        region: String? = nil, endpoint: URL? = nil, profile: String? = nil, environment: AWSEnvironment = .current,
        requestTimeout: Duration = .seconds(30), retry: EC2RetryPolicy = EC2RetryPolicy()
    ) throws -> EC2Configuration {
        let region = try AWSConfigurationResolver.region(region, profile: profile, environment: environment)
        let credentials = try AWSConfigurationResolver.credentials(profile: profile, environment: environment)
        var resolvedEndpoint = endpoint
        if resolvedEndpoint == nil {
            for variable in ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"] {
                guard let value = environment[variable] else { continue }
                guard let url = URL(string: value), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()), url.host != nil else {
                    throw AWSConfigurationError(code: .invalidEndpoint, message: "\(variable)='\(value)' is not an http(s) URL", lookedAt: [])
                }
                resolvedEndpoint = url
                break
            }
        }
        return EC2Configuration(region: region, credentials: credentials, endpoint: resolvedEndpoint, requestTimeout: requestTimeout, retry: retry)
    }

    /// `https://ec2.REGION.amazonaws.com` (`.amazonaws.com.cn` in the China regions).
    public static func regionalEndpoint(_ region: String) -> URL {
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return URL(string: "https://ec2.\(region).\(suffix)")!
    }
}

/// An EC2 Query API client: every call a form-encoded POST, signed with SigV4, bounded by
/// a timeout, and retried per ``EC2RetryPolicy`` when that is safe.
///
/// The operations Conductor needs are in EC2Client+Operations.swift; ``call(_:_:idempotent:)``
/// reaches any other action.
public struct EC2Client: Sendable {
    public let configuration: EC2Configuration
    let httpClient: HTTPClient
    let logger: Logger

    /// A logger that drops everything, for callers that pass none.
    public static let quietLogger = Logger(label: "conductor.ec2", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The HTTP client of every EC2Client not given one: one per process, never shut down.
    /// It does not retry a failed connection itself, as AsyncHTTPClient does by default
    /// until the deadline: the retry policy decides, and a refused connection is reported
    /// at once. EC2 neither redirects nor compresses, so neither is followed.
    public static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(30)),
            decompression: .disabled
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// `httpClient`: the caller's client, else ``sharedHTTPClient``.
    public init(configuration: EC2Configuration, httpClient: HTTPClient = EC2Client.sharedHTTPClient, logger: Logger = EC2Client.quietLogger) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
    }

    /// Calls `action` with `parameters` and returns the answer's root element, retrying per
    /// the configuration's policy. `idempotent`: whether repeating the call after a lost
    /// answer or a server failure is harmless.
    public func call(_ action: String, _ parameters: EC2Parameters = EC2Parameters(), idempotent: Bool) async throws -> EC2XMLElement {
        let body = parameters.formBody(action: action, version: EC2Configuration.apiVersion)
        let policy = self.configuration.retry
        let clock = ContinuousClock()
        let started = clock.now
        var attempt = 1
        while true {
            let left = policy.maxTotalTime - (clock.now - started)
            let timeout = max(min(self.configuration.requestTimeout, left), .milliseconds(100))
            do {
                return try await self.send(action: action, body: body, timeout: timeout)
            } catch var error as EC2Error {
                let decision = policy.decision(
                    after: error, attempt: attempt, elapsed: clock.now - started, idempotent: idempotent, jitter: Double.random(in: 0...1)
                )
                switch decision {
                case .giveUp:
                    error.attempts = attempt
                    throw error
                case .retry(let delay):
                    self.logger.notice(
                        "EC2 call failed, retrying",
                        metadata: [
                            "ec2_action": "\(action)", "ec2_attempt": "\(attempt)", "ec2_error_code": "\(error.code)",
                            "ec2_retry_in": "\(delay)",
                        ]
                    )
                    try await Task.sleep(for: delay)
                    attempt += 1
                }
            }
        }
    }

    /// One signed request: the answer's root element, or an ``EC2Error``.
    func send(action: String, body: String, timeout: Duration) async throws -> EC2XMLElement {
        let endpoint = self.configuration.endpoint
        let unsigned = SigV4Request(
            method: "POST", url: endpoint,
            headers: [.init("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: Array(body.utf8)
        )
        let signer = SigV4Signer(credentials: self.configuration.credentials, region: self.configuration.region, service: "ec2")
        let signature = signer.sign(unsigned, date: Date())

        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        for header in unsigned.headers + signature.addedHeaders {
            request.headers.add(name: header.name, value: header.value)
        }
        request.body = .bytes(ByteBuffer(bytes: unsigned.body))

        let status: HTTPResponseStatus
        let bytes: [UInt8]
        do {
            (status, bytes) = try await self.perform(request, timeout: timeout)
        } catch {
            // The caller gave up: that is not EC2's failure, and nothing is retried.
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw self.transportError(error, action: action, timeout: timeout)
        }
        self.logger.debug("EC2 answered", metadata: ["ec2_action": "\(action)", "ec2_status": "\(status.code)"])

        if (200..<300).contains(status.code) {
            guard let root = EC2XMLElement.parse(bytes) else {
                throw EC2Error(
                    kind: .server, code: "MalformedResponse", message: "the answer was not XML: \(Self.snippet(bytes))",
                    httpStatus: Int(status.code), action: action, endpoint: endpoint.absoluteString
                )
            }
            return root
        }
        throw Self.errorAnswer(bytes, status: Int(status.code), action: action, endpoint: endpoint.absoluteString)
    }

    /// The request and its whole answer within `timeout`. AsyncHTTPClient's deadline ends
    /// when the head arrives, so the body is raced against the same clock here.
    private func perform(_ request: HTTPClientRequest, timeout: Duration) async throws -> (HTTPResponseStatus, [UInt8]) {
        let httpClient = self.httpClient
        let logger = self.logger
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        return try await withThrowingTaskGroup(of: (HTTPResponseStatus, [UInt8])?.self) { group in
            group.addTask {
                let response = try await httpClient.execute(request, deadline: deadline, logger: logger)
                let body = try await response.body.collect(upTo: 16 << 20)
                return (response.status, Array(body.readableBytesView))
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let answer = first else {
                throw HTTPClientError.deadlineExceeded
            }
            return answer
        }
    }

    private func transportError(_ error: any Error, action: String, timeout: Duration) -> EC2Error {
        let endpoint = self.configuration.endpoint.absoluteString
        let (code, message): (String, String)
        switch error as? HTTPClientError {
        case .deadlineExceeded?, .readTimeout?, .writeTimeout?:
            (code, message) = ("Timeout", "no answer within \(timeout)")
        case .connectTimeout?:
            (code, message) = ("Timeout", "could not connect within \(timeout)")
        default:
            (code, message) = ("ConnectionFailed", Self.describe(error))
        }
        return EC2Error(kind: .transport, code: code, message: message, action: action, endpoint: endpoint)
    }

    /// "connection refused" rather than a type dump where the error says so.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("ECONNREFUSED") || text.lowercased().contains("connection refused") { return "connection refused" }
        if text.contains("NXDOMAIN") || text.contains("DNS") || text.contains("lookup") { return "the host name does not resolve (\(text))" }
        return text
    }

    /// An error answer: EC2's `<Response><Errors><Error><Code>…</Code><Message>…` with
    /// `<RequestID>`, or another AWS shape (`<ErrorResponse><Error>`), or not XML at all.
    static func errorAnswer(_ bytes: [UInt8], status: Int, action: String, endpoint: String) -> EC2Error {
        if let root = EC2XMLElement.parse(bytes), let error = Self.firstError(in: root), let code = error.string("Code") {
            let requestID = root.string("RequestID") ?? root.string("RequestId") ?? root.string("requestId")
            return EC2Error(code: code, message: error.string("Message") ?? "", requestID: requestID, httpStatus: status, action: action, endpoint: endpoint)
        }
        let snippet = Self.snippet(bytes)
        return EC2Error(code: "HTTP\(status)", message: snippet.isEmpty ? "HTTP \(status) with no explanation" : snippet, requestID: nil, httpStatus: status, action: action, endpoint: endpoint)
    }

    private static func firstError(in element: EC2XMLElement) -> EC2XMLElement? {
        if element.name == "Error", element.child("Code") != nil { return element }
        for child in element.children {
            if let found = Self.firstError(in: child) { return found }
        }
        return nil
    }

    static func snippet(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(300), as: UTF8.self)
            .split(whereSeparator: \.isNewline).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
        return bytes.count > 300 ? text + "…" : text
    }
}
