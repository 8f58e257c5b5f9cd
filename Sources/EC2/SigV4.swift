import Crypto
import Foundation

/// A request as AWS Signature Version 4 sees it: method, path and query not yet
/// percent-encoded, headers as sent, and the body.
public struct SigV4Request: Sendable, Equatable {
    /// A header or a query parameter. Order is kept: repeated header names are joined in
    /// the order given, as the signature requires.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public var method: String
    /// The path, not percent-encoded ("/example space/"); the signer encodes it.
    public var path: String
    /// Query parameters, not percent-encoded.
    public var query: [Field]
    /// Headers; must include `Host`.
    public var headers: [Field]
    public var body: [UInt8]

    public init(method: String, path: String, query: [Field] = [], headers: [Field], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// A request to `url`, with a `Host` header made from it (the port only when the URL
    /// names one) in front of `headers`.
    public init(method: String, url: URL, headers: [Field] = [], body: [UInt8] = []) {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let path = components?.path ?? "/"
        let query = (components?.queryItems ?? []).map { Field($0.name, $0.value ?? "") }
        var host = components?.host ?? ""
        if let port = components?.port {
            host += ":\(port)"
        }
        self.init(method: method, path: path.isEmpty ? "/" : path, query: query, headers: [Field("Host", host)] + headers, body: body)
    }

    /// The value of the first header named `name` (any case).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// What signing produced: the intermediate texts (for tests and for debugging a
/// `SignatureDoesNotMatch`) and the headers the request must carry.
public struct SigV4Signature: Sendable, Equatable {
    public let canonicalRequest: String
    public let stringToSign: String
    /// Lower-case hex HMAC-SHA256 of the string to sign.
    public let signature: String
    /// `host;x-amz-date;...`: the names that were signed.
    public let signedHeaders: String
    /// The `Authorization` header's value.
    public let authorization: String
    /// The headers to send that the request did not already have: `X-Amz-Date`,
    /// `X-Amz-Security-Token` (with a session token) and `Authorization`.
    public let addedHeaders: [SigV4Request.Field]
}

/// AWS Signature Version 4 (header signing, `AWS4-HMAC-SHA256`), as the published test
/// suite checks it: canonical request, string to sign, derived key, `Authorization`.
///
/// Every header the request carries is signed. The path is normalized (dot segments and
/// empty segments removed) and encoded once, which is right for every service but S3.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"

    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Signs `request` as of `date`. An `X-Amz-Date` or `X-Amz-Security-Token` the
    /// request already carries is signed as it is; otherwise the signer adds them.
    public func sign(_ request: SigV4Request, date: Date) -> SigV4Signature {
        let stamp = SigV4Timestamp(date)
        var headers = request.headers
        var added: [SigV4Request.Field] = []
        if request.header("x-amz-date") == nil {
            added.append(.init("X-Amz-Date", stamp.dateTime))
        }
        if let token = self.credentials.sessionToken, request.header("x-amz-security-token") == nil {
            added.append(.init("X-Amz-Security-Token", token))
        }
        headers += added
        let dateTime = request.header("x-amz-date") ?? stamp.dateTime
        // The scope's day comes from the date signed, so a caller's X-Amz-Date wins.
        let day = String(dateTime.prefix(8))

        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(headers)
        let canonicalRequest = [
            request.method.uppercased(),
            Self.canonicalURI(request.path),
            Self.canonicalQuery(request.query),
            canonicalHeaders,
            signedHeaders,
            Self.hexSHA256(request.body),
        ].joined(separator: "\n")

        let scope = "\(day)/\(self.region)/\(self.service)/aws4_request"
        let stringToSign = [
            Self.algorithm, dateTime, scope, Self.hexSHA256(Array(canonicalRequest.utf8)),
        ].joined(separator: "\n")

        let key = Self.signingKey(secret: self.credentials.secretAccessKey, day: day, region: self.region, service: self.service)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        let authorization = "\(Self.algorithm) Credential=\(self.credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        added.append(.init("Authorization", authorization))
        return SigV4Signature(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
            signedHeaders: signedHeaders, authorization: authorization, addedHeaders: added
        )
    }

    // MARK: - The steps, each as the specification states it

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request").
    static func signingKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array("AWS4\(secret)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// Lower-cased names sorted, each with its values trimmed, inner runs of spaces
    /// collapsed, and repeated headers joined by commas in the order sent.
    static func canonicalHeaders(_ headers: [SigV4Request.Field]) -> (canonical: String, signed: String) {
        var values: [String: [String]] = [:]
        for header in headers {
            values[header.name.lowercased(), default: []].append(Self.trimmedHeaderValue(header.value))
        }
        let names = values.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let canonical = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }

    static func trimmedHeaderValue(_ value: String) -> String {
        var result = ""
        var pendingSpace = false
        for character in value {
            if character == " " || character == "\t" {
                pendingSpace = !result.isEmpty
            } else {
                if pendingSpace { result.append(" ") }
                pendingSpace = false
                result.append(character)
            }
        }
        return result
    }

    /// Each parameter's name and value percent-encoded, sorted by name then value.
    static func canonicalQuery(_ query: [SigV4Request.Field]) -> String {
        let encoded: [(name: String, value: String)] = query.map { (Self.percentEncode($0.name), Self.percentEncode($0.value)) }
        let sorted = encoded.sorted { left, right in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// The path with "." and ".." resolved and empty segments dropped (a trailing slash
    /// kept), each segment percent-encoded once.
    static func canonicalURI(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        var result = "/" + segments.map { Self.percentEncode(String($0)) }.joined(separator: "/")
        if !segments.isEmpty && path.hasSuffix("/") {
            result += "/"
        }
        return result
    }

    /// RFC 3986 encoding as AWS wants it: every byte but A-Z a-z 0-9 - _ . ~ as %XX
    /// (upper-case hex), a space as %20.
    public static func percentEncode(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += "%"
                result.unicodeScalars.append(Self.upperHexDigits[Int(byte >> 4)])
                result.unicodeScalars.append(Self.upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return result
    }

    private static let upperHexDigits: [Unicode.Scalar] = Array("0123456789ABCDEF".unicodeScalars)

    static func hexSHA256(_ bytes: [UInt8]) -> String {
        Self.hex(SHA256.hash(data: bytes))
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var result: [UInt8] = []
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: result, as: UTF8.self)
    }
}

/// `20150830T123600Z` and its day, in UTC.
struct SigV4Timestamp {
    let dateTime: String

    init(_ date: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String {
            let value = value ?? 0
            return value < 10 ? "0\(value)" : "\(value)"
        }
        self.dateTime = "\(parts.year ?? 1970)\(two(parts.month))\(two(parts.day))T\(two(parts.hour))\(two(parts.minute))\(two(parts.second))Z"
    }
}
