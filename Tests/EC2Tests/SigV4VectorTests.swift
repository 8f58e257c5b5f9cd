import Foundation
import Testing

@testable import EC2

/// AWS's SigV4 test suite (Vectors/README.md): each `.req` signed must give the suite's
/// canonical request, string to sign and Authorization, byte for byte.
@Suite("SigV4 against AWS's test suite")
struct SigV4VectorTests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var request: String
        var canonicalRequest: String
        var stringToSign: String
        var authorization: String

        var testDescription: String { self.name }
    }

    static let vectors: [Vector] = {
        guard let root = Bundle.module.url(forResource: "Vectors", withExtension: nil) else { return [] }
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        return files.filter { $0.pathExtension == "req" }.map { request in
            let base = request.deletingPathExtension()
            func read(_ suffix: String) -> String {
                (try? String(contentsOf: base.appendingPathExtension(suffix), encoding: .utf8)) ?? "(missing \(suffix))"
            }
            let name = base.path.replacingOccurrences(of: root.path + "/", with: "").components(separatedBy: "/").dropLast().joined(separator: "/")
            return Vector(name: name, request: read("req"), canonicalRequest: read("creq"), stringToSign: read("sts"), authorization: read("authz"))
        }.sorted { $0.name < $1.name }
    }()

    @Test func theSuiteIsThere() {
        #expect(Self.vectors.count == 29)
    }

    @Test(arguments: SigV4VectorTests.vectors)
    func vector(_ vector: Vector) throws {
        let request = try Self.parse(vector.request)
        var credentials = Self.credentials
        credentials.sessionToken = request.header("X-Amz-Security-Token")
        let signature = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service").sign(request, date: Self.date)
        #expect(signature.canonicalRequest == vector.canonicalRequest)
        #expect(signature.stringToSign == vector.stringToSign)
        #expect(signature.authorization == vector.authorization)
        // The request carried X-Amz-Date (and the token): only Authorization is added.
        #expect(signature.addedHeaders.map(\.name) == ["Authorization"])
    }

    /// Without X-Amz-Date and the token in the request, the signer adds both and signs them.
    @Test func addsDateAndTokenItself() throws {
        var credentials = Self.credentials
        credentials.sessionToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
        let request = SigV4Request(method: "POST", url: URL(string: "https://example.amazonaws.com/")!)
        let signature = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service").sign(request, date: Self.date)
        let before = try #require(Self.vectors.first { $0.name == "post-sts-token/post-sts-header-before" })
        #expect(signature.authorization == before.authorization)
        #expect(signature.addedHeaders.map(\.name) == ["X-Amz-Date", "X-Amz-Security-Token", "Authorization"])
        #expect(signature.addedHeaders.first?.value == "20150830T123600Z")
    }

    @Test func hostFromURLKeepsAnExplicitPort() {
        let request = SigV4Request(method: "POST", url: URL(string: "http://127.0.0.1:5000/")!)
        #expect(request.header("host") == "127.0.0.1:5000")
        #expect(SigV4Request(method: "GET", url: URL(string: "https://ec2.eu-west-1.amazonaws.com")!).path == "/")
    }

    @Test func percentEncodingIsAWSs() {
        #expect(SigV4Signer.percentEncode("a b+c/d=e~f_g.h-i") == "a%20b%2Bc%2Fd%3De~f_g.h-i")
        #expect(SigV4Signer.percentEncode("ሴ") == "%E1%88%B4")
    }

    /// A `.req` as the suite writes it: request line, `Name:value` headers, blank line,
    /// body. The target's path and query are taken as they stand (not percent-decoded).
    static func parse(_ text: String) throws -> SigV4Request {
        let (head, body): (Substring, Substring) = {
            if let blank = text.range(of: "\n\n") { return (text[..<blank.lowerBound], text[blank.upperBound...]) }
            return (Substring(text), "")
        }()
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        let method = try #require(requestLine.split(separator: " ").first).description
        let versionStart = try #require(requestLine.range(of: " HTTP/", options: .backwards))
        let target = String(requestLine[requestLine.index(requestLine.startIndex, offsetBy: method.count + 1)..<versionStart.lowerBound])
        let (path, query) = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).count == 2
            ? (String(target.prefix { $0 != "?" }), String(target.drop { $0 != "?" }.dropFirst()))
            : (target, "")
        let fields = query.isEmpty ? [] : query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> SigV4Request.Field in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return .init(String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        let headers = try lines.map { line -> SigV4Request.Field in
            let colon = try #require(line.firstIndex(of: ":"))
            return .init(String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        return SigV4Request(method: method, path: path, query: fields, headers: headers, body: Array(body.utf8))
    }
}
