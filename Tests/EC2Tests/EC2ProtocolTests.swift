import Foundation
import Testing

@testable import EC2

/// The parts without I/O: error classification and wording, retry decisions, parameter
/// flattening, answer parsing.
@Suite("EC2 errors, retries, parameters and answers")
struct EC2ProtocolTests {
    @Test(arguments: [
        ("RequestLimitExceeded", 503, EC2Error.Kind.throttled), ("Throttling", 400, .throttled),
        ("ThrottlingException", 400, .throttled), ("SlowDown", 503, .throttled), ("Anything", 429, .throttled),
        ("AuthFailure", 401, .auth), ("UnauthorizedOperation", 403, .auth), ("InvalidClientTokenId", 403, .auth),
        ("SignatureDoesNotMatch", 403, .auth), ("OptInRequired", 401, .auth), ("Whatever", 403, .auth),
        ("InsufficientInstanceCapacity", 500, .capacity), ("InstanceLimitExceeded", 400, .capacity),
        ("VcpuLimitExceeded", 400, .capacity),
        ("InvalidInstanceID.NotFound", 400, .notFound), ("InvalidAMIID.NotFound", 400, .notFound),
        ("InvalidParameterValue", 400, .invalid), ("MissingParameter", 400, .invalid), ("InvalidInstanceID.Malformed", 400, .invalid),
        ("InternalError", 500, .server), ("Unavailable", 503, .server), ("HTTP502", 502, .server),
    ])
    func classification(code: String, status: Int, kind: EC2Error.Kind) {
        #expect(EC2Error.classify(code: code, httpStatus: status) == kind)
    }

    @Test func retryableByKindAndIdempotence() {
        func error(_ kind: EC2Error.Kind) -> EC2Error { EC2Error(kind: kind, code: "X", message: "", action: "A", endpoint: "E") }
        #expect(error(.throttled).isRetryable(idempotent: false))
        #expect(error(.server).isRetryable(idempotent: true))
        #expect(!error(.server).isRetryable(idempotent: false))
        #expect(error(.transport).isRetryable(idempotent: true))
        #expect(!error(.transport).isRetryable(idempotent: false))
        for kind in [EC2Error.Kind.auth, .capacity, .notFound, .invalid] {
            #expect(!error(kind).isRetryable(idempotent: true))
        }
    }

    @Test func backoffDoublesUpToItsCapWithFullJitter() {
        let policy = EC2RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1), maxTotalTime: .seconds(30))
        #expect(policy.backoff(attempt: 1, jitter: 1) == .milliseconds(100))
        #expect(policy.backoff(attempt: 2, jitter: 1) == .milliseconds(200))
        #expect(policy.backoff(attempt: 4, jitter: 1) == .milliseconds(800))
        #expect(policy.backoff(attempt: 5, jitter: 1) == .seconds(1))
        #expect(policy.backoff(attempt: 60, jitter: 1) == .seconds(1))
        #expect(policy.backoff(attempt: 3, jitter: 0.5) == .milliseconds(200))
        #expect(policy.backoff(attempt: 3, jitter: 0) == .zero)
    }

    @Test func retryDecisionsAreBounded() {
        let policy = EC2RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), maxDelay: .seconds(1), maxTotalTime: .seconds(2))
        let throttled = EC2Error(kind: .throttled, code: "RequestLimitExceeded", message: "", action: "A", endpoint: "E")
        let auth = EC2Error(kind: .auth, code: "AuthFailure", message: "", action: "A", endpoint: "E")
        #expect(policy.decision(after: throttled, attempt: 1, elapsed: .zero, idempotent: false, jitter: 1) == .retry(after: .milliseconds(100)))
        #expect(policy.decision(after: throttled, attempt: 2, elapsed: .zero, idempotent: false, jitter: 1) == .retry(after: .milliseconds(200)))
        // The third attempt was the last one allowed.
        #expect(policy.decision(after: throttled, attempt: 3, elapsed: .zero, idempotent: false, jitter: 1) == .giveUp)
        // A wait that would end past the total budget is not started.
        #expect(policy.decision(after: throttled, attempt: 1, elapsed: .milliseconds(1950), idempotent: true, jitter: 1) == .giveUp)
        #expect(policy.decision(after: auth, attempt: 1, elapsed: .zero, idempotent: true, jitter: 1) == .giveUp)
        #expect(EC2RetryPolicy.none.decision(after: throttled, attempt: 1, elapsed: .zero, idempotent: true, jitter: 1) == .giveUp)
    }

    @Test func descriptionsTellAnOperatorWhatToDo() {
        let auth = EC2Client.errorAnswer(
            Array(EC2Answers.error("AuthFailure", "AWS was not able to validate the provided access credentials").utf8),
            status: 401, action: "DescribeInstances", endpoint: "https://ec2.us-east-1.amazonaws.com")
        #expect(auth.kind == .auth)
        #expect(auth.requestID == "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE")
        #expect(auth.httpStatus == 401)
        #expect(auth.description == "EC2 refused the credentials (AuthFailure): AWS was not able to validate the provided access credentials [request id 7a62c49f-347e-4fc4-9331-6e8eEXAMPLE]; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the profile in ~/.aws/credentials")

        let permission = EC2Error(code: "UnauthorizedOperation", message: "You are not authorized to perform this operation.", requestID: nil, httpStatus: 403, action: "RunInstances", endpoint: "E")
        #expect(permission.description.hasSuffix("the IAM user or role needs permission for ec2:RunInstances"))

        var throttled = EC2Error(code: "RequestLimitExceeded", message: "Request limit exceeded.", requestID: "r-1", httpStatus: 503, action: "DescribeInstances", endpoint: "E")
        throttled.attempts = 5
        #expect(throttled.description == "EC2 throttled DescribeInstances (RequestLimitExceeded): Request limit exceeded. [request id r-1, after 5 attempts]; this account is sending EC2 too many requests, try again later")

        let capacity = EC2Error(code: "InsufficientInstanceCapacity", message: "We currently do not have sufficient t3.micro capacity.", requestID: nil, httpStatus: 500, action: "RunInstances", endpoint: "E")
        #expect(capacity.kind == .capacity)
        #expect(capacity.description.contains("try another instance type or availability zone"))

        let transport = EC2Error(kind: .transport, code: "ConnectionFailed", message: "connection refused", action: "DescribeInstances", endpoint: "http://127.0.0.1:1/")
        #expect(transport.description == "could not reach EC2 at http://127.0.0.1:1/ for DescribeInstances: connection refused; check the region, the network, and AWS_ENDPOINT_URL_EC2 if set")
    }

    @Test func errorAnswersInOtherShapes() {
        let query = EC2Client.errorAnswer(
            Array("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>abc</RequestId></ErrorResponse>".utf8),
            status: 400, action: "A", endpoint: "E")
        #expect(query.kind == .throttled)
        #expect(query.code == "Throttling")
        #expect(query.requestID == "abc")

        let html = EC2Client.errorAnswer(Array("<html>\n<body>Bad Gateway</body>\n</html>".utf8), status: 502, action: "A", endpoint: "E")
        #expect(html.kind == .server)
        #expect(html.code == "HTTP502")
        #expect(html.message == "<html> <body>Bad Gateway</body> </html>")
    }

    @Test func parametersFlattenAsTheQueryAPIWants() {
        var parameters = EC2Parameters()
        parameters.addList("InstanceId", ["i-1", "i-2"])
        parameters.addFilters([.tag("conductor:deployment", "web"), .instanceState(.pending, .running)])
        parameters.addTags("TagSpecification.1.Tag", ["b": "2", "a": "1 + 1"])
        parameters.add("UserData", "IyEvYmluL3NoCg==")
        parameters.add("KeyName", nil as String?)
        #expect(parameters.formBody(action: "DescribeInstances", version: "2016-11-15") == [
            "Action=DescribeInstances", "Version=2016-11-15", "InstanceId.1=i-1", "InstanceId.2=i-2",
            "Filter.1.Name=tag%3Aconductor%3Adeployment", "Filter.1.Value.1=web",
            "Filter.2.Name=instance-state-name", "Filter.2.Value.1=pending", "Filter.2.Value.2=running",
            "TagSpecification.1.Tag.1.Key=a", "TagSpecification.1.Tag.1.Value=1%20%2B%201",
            "TagSpecification.1.Tag.2.Key=b", "TagSpecification.1.Tag.2.Value=2",
            "UserData=IyEvYmluL3NoCg%3D%3D",
        ].joined(separator: "&"))
    }

    @Test func describeInstancesAnswer() throws {
        let root = try #require(EC2XMLElement.parse(Array(EC2Answers.describeOneInstance.utf8)))
        let items = root.items("reservationSet").flatMap { $0.items("instancesSet") }
        let instance = try #require(items.compactMap(EC2Instance.init).first)
        #expect(instance.id == "i-1234567890abcdef0")
        #expect(instance.state == .running)
        #expect(instance.privateIP == "192.168.1.88")
        #expect(instance.publicIP == "54.194.252.215")
        #expect(instance.tags == ["Name": "Server_1", "conductor:deployment": "web-1", "empty": ""])
        #expect(instance.imageID == "ami-bff32ccc")
        #expect(instance.instanceType == "t2.micro")
        #expect(instance.subnetID == "subnet-56f5f633")
        #expect(instance.vpcID == "vpc-11112222")
        #expect(instance.availabilityZone == "eu-west-1c")
        #expect(instance.keyName == "my_keypair")
        #expect(instance.launchTime == Date(timeIntervalSince1970: 1_525_797_979))
    }

    @Test func instanceStateNames() {
        #expect(EC2InstanceState("shutting-down") == .shuttingDown)
        #expect(EC2InstanceState.shuttingDown.name == "shutting-down")
        #expect(EC2InstanceState("hibernating") == .other("hibernating"))
        #expect(EC2XMLElement.parse(Array("not xml".utf8)) == nil)
    }
}
