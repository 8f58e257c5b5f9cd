import Foundation
import Testing

@testable import EC2

/// The client against ``ScriptedEC2Server`` on loopback: signing on the wire, retries,
/// timeouts, errors.
@Suite("EC2Client against a scripted server", .timeLimit(.minutes(1)))
struct EC2ClientTests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "session-token")
    static let quickRetries = EC2RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100), maxTotalTime: .seconds(10))

    static func client(_ url: URL, timeout: Duration = .seconds(5), retry: EC2RetryPolicy = EC2ClientTests.quickRetries) -> EC2Client {
        EC2Client(configuration: EC2Configuration(region: "us-east-1", credentials: Self.credentials, endpoint: url, requestTimeout: timeout, retry: retry))
    }

    @Test func throttledTwiceThenAnswered() async throws {
        let server = try await ScriptedEC2Server.start { number, _ in
            number <= 2
                ? .answer(status: .serviceUnavailable, body: EC2Answers.error("RequestLimitExceeded", "Request limit exceeded."))
                : .answer(status: .ok, body: EC2Answers.describeOneInstance)
        }
        defer { server.close() }
        let instances = try await Self.client(server.url).describeInstances(filters: [.tag("conductor:deployment", "web-1")])
        #expect(instances.map(\.id) == ["i-1234567890abcdef0"])
        let requests = server.requests
        #expect(requests.count == 3)
        for request in requests {
            #expect(request.head.method == .POST)
            #expect(request.body == "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aconductor%3Adeployment&Filter.1.Value.1=web-1")
            #expect(request.head.headers["Content-Type"] == ["application/x-www-form-urlencoded; charset=utf-8"])
            #expect(request.head.headers["Host"] == ["127.0.0.1:\(server.port)"])
            #expect(request.head.headers["X-Amz-Security-Token"] == ["session-token"])
            let authorization = try #require(request.head.headers["Authorization"].first)
            #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"))
            #expect(authorization.contains("/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="))
        }
    }

    /// Each request signed is the request sent: the server recomputes the signature from
    /// what arrived.
    @Test func signatureCoversWhatIsSent() async throws {
        let server = try await ScriptedEC2Server.start { _, _ in .answer(status: .ok, body: EC2Answers.describeOneInstance) }
        defer { server.close() }
        _ = try await Self.client(server.url).describeInstances(ids: ["i-1234567890abcdef0"])
        let request = try #require(server.requests.first)
        let date = try #require(request.head.headers["X-Amz-Date"].first)
        let signed = SigV4Request(
            method: "POST", path: "/",
            headers: ["Content-Type", "Host", "X-Amz-Date", "X-Amz-Security-Token"].map { .init($0, request.head.headers[$0].first ?? "") },
            body: Array(request.body.utf8))
        let signature = SigV4Signer(credentials: Self.credentials, region: "us-east-1", service: "ec2").sign(signed, date: Date())
        #expect(signature.addedHeaders.map(\.name) == ["Authorization"])
        #expect(request.head.headers["Authorization"].first == signature.authorization)
        #expect(date.count == 16)
    }

    @Test func throttlingOutlastingTheAttemptsSurfaces() async throws {
        let server = try await ScriptedEC2Server.start { _, _ in
            .answer(status: .serviceUnavailable, body: EC2Answers.error("RequestLimitExceeded", "Request limit exceeded."))
        }
        defer { server.close() }
        let error = try await #require(throws: EC2Error.self) {
            _ = try await Self.client(server.url).describeInstances()
        }
        #expect(error.kind == .throttled)
        #expect(error.attempts == 4)
        #expect(server.requests.count == 4)
        #expect(error.description.contains("after 4 attempts"))
    }

    @Test func refusalsAreNotRetried() async throws {
        let server = try await ScriptedEC2Server.start { _, _ in
            .answer(status: .unauthorized, body: EC2Answers.error("AuthFailure", "AWS was not able to validate the provided access credentials"))
        }
        defer { server.close() }
        let error = try await #require(throws: EC2Error.self) {
            _ = try await Self.client(server.url).runInstances(EC2RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro"))
        }
        #expect(error.kind == .auth)
        #expect(error.code == "AuthFailure")
        #expect(error.attempts == 1)
        #expect(server.requests.count == 1)
        #expect(error.description.contains("check AWS_ACCESS_KEY_ID"))
    }

    @Test func serverFailuresRetriedOnlyWhenIdempotent() async throws {
        let server = try await ScriptedEC2Server.start { _, _ in
            .answer(status: .internalServerError, body: EC2Answers.error("InternalError", "An internal error has occurred"))
        }
        defer { server.close() }
        let client = Self.client(server.url)
        let createVpc = try await #require(throws: EC2Error.self) { _ = try await client.createVpc(cidrBlock: "10.0.0.0/16") }
        #expect(createVpc.kind == .server)
        #expect(server.requests.count == 1)
        let describe = try await #require(throws: EC2Error.self) { _ = try await client.describeSubnets() }
        #expect(describe.kind == .server)
        #expect(describe.attempts == 4)
        #expect(server.requests.count == 5)
    }

    /// RunInstances carries a ClientToken even when the caller gave none, and the same one
    /// on every retry, so a retry cannot launch twice.
    @Test func runInstancesRetriesWithOneClientToken() async throws {
        let server = try await ScriptedEC2Server.start { number, _ in
            number == 1
                ? .answer(status: .internalServerError, body: EC2Answers.error("InternalError", "An internal error has occurred"))
                : .answer(status: .ok, body: "<RunInstancesResponse><reservationId>r-1</reservationId><instancesSet/></RunInstancesResponse>")
        }
        defer { server.close() }
        let reservation = try await Self.client(server.url).runInstances(
            EC2RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", userData: "#!/bin/sh\necho hi\n", tags: ["Name": "web"]))
        #expect(reservation.reservationID == "r-1")
        let bodies = server.requests.map(\.body)
        #expect(bodies.count == 2)
        #expect(bodies[0] == bodies[1])
        #expect(bodies[0].contains("ClientToken="))
        #expect(bodies[0].contains("UserData=IyEvYmluL3NoCmVjaG8gaGkK&"))
        #expect(bodies[0].contains("TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web"))
    }

    @Test func silenceIsATimeout() async throws {
        let server = try await ScriptedEC2Server.start { _, _ in .silence }
        defer { server.close() }
        let clock = ContinuousClock()
        let started = clock.now
        let error = try await #require(throws: EC2Error.self) {
            _ = try await Self.client(server.url, timeout: .milliseconds(500), retry: .none).describeInstances()
        }
        let took = clock.now - started
        #expect(error.kind == .transport)
        #expect(error.code == "Timeout")
        #expect(error.description.contains("could not reach EC2 at \(server.url.absoluteString) for DescribeInstances: no answer within 0.5 seconds"))
        #expect(took >= .milliseconds(450))
        #expect(took < .seconds(3))
    }

    /// Retries of a call that keeps timing out stop at the total budget, not at the
    /// attempt count.
    @Test func totalTimeBoundsRetries() async throws {
        let server = try await ScriptedEC2Server.start { _, _ in .silence }
        defer { server.close() }
        let policy = EC2RetryPolicy(maxAttempts: 50, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50), maxTotalTime: .milliseconds(1200))
        let clock = ContinuousClock()
        let started = clock.now
        let error = try await #require(throws: EC2Error.self) {
            _ = try await Self.client(server.url, timeout: .milliseconds(400), retry: policy).describeInstances()
        }
        let took = clock.now - started
        #expect(error.kind == .transport)
        #expect(error.attempts >= 2)
        #expect(error.attempts <= 4)
        #expect(took < .seconds(3))
    }

    @Test func connectionRefusedNamesTheEndpoint() async throws {
        // A port that was just free: nothing listens there.
        let server = try await ScriptedEC2Server.start { _, _ in .silence }
        let url = server.url
        await server.stop()
        let error = try await #require(throws: EC2Error.self) {
            _ = try await Self.client(url, retry: .none).describeInstances()
        }
        #expect(error.kind == .transport)
        #expect(error.code == "ConnectionFailed")
        #expect(error.endpoint == url.absoluteString)
        #expect(error.description == "could not reach EC2 at \(url.absoluteString) for DescribeInstances: connection refused; check the region, the network, and AWS_ENDPOINT_URL_EC2 if set")
    }
}
