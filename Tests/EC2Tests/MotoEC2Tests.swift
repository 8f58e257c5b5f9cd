import EC2
import Foundation
import Testing
import TestSupport

/// Starts one moto for the suite it marks and hands it to the suite's tests
/// (``MotoScope/server``); stops it afterwards, also when a test fails.
struct MotoScope: SuiteTrait, TestScoping {
    @TaskLocal static var server: MotoServer?

    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try await MotoServer.start()
        do {
            try await Self.$server.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

/// The client against moto's EC2 emulator: real Query API answers, real XML, real errors.
/// Each test keeps to its own tag values and addresses, so the tests may share one moto.
@Suite("EC2Client against moto", .enabled(if: MotoServer.isAvailable, "needs moto: pip install 'moto[server]', or CONDUCTOR_MOTO_URL"), MotoScope(), .timeLimit(.minutes(3)))
struct MotoEC2Tests {
    static let retry = EC2RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .milliseconds(200), maxTotalTime: .seconds(30))

    static func client(region: String = "us-east-1") throws -> EC2Client {
        let server = try #require(MotoScope.server)
        // moto takes any key; these say so in its logs.
        let credentials = AWSCredentials(accessKeyID: "AKIDMOTOTESTING", secretAccessKey: "moto-testing", source: "the test")
        return EC2Client(configuration: EC2Configuration(region: region, credentials: credentials, endpoint: server.url, requestTimeout: .seconds(20), retry: Self.retry))
    }

    /// A subnet in `cidr` of a new VPC.
    static func subnet(_ client: EC2Client, vpc vpcCIDR: String, subnet cidr: String) async throws -> EC2Subnet {
        let vpc = try await client.createVpc(cidrBlock: vpcCIDR)
        #expect(vpc.cidrBlock == vpcCIDR)
        return try await client.createSubnet(vpcID: vpc.id, cidrBlock: cidr)
    }

    @Test func launchFindReadTagTerminate() async throws {
        let client = try Self.client()
        let subnet = try await Self.subnet(client, vpc: "10.231.0.0/16", subnet: "10.231.9.0/24")
        #expect(subnet.cidrBlock == "10.231.9.0/24")
        let described = try await client.describeSubnets(ids: [subnet.id])
        #expect(described.map(\.id) == [subnet.id])
        #expect(described.first?.vpcID == subnet.vpcID)

        let deployment = "launch-\(UUID().uuidString.prefix(8))"
        let userData = "#!/bin/sh\nconductor agent --broker amqp://10.231.9.1/ # +/= survive\n"
        let reservation = try await client.runInstances(EC2RunInstancesRequest(
            imageID: "ami-12c6146b", instanceType: "t3.micro", subnetID: subnet.id, userData: userData,
            tags: ["conductor:deployment": deployment, "Name": "web-1"]))
        let launched = try #require(reservation.instances.first)
        #expect(reservation.instances.count == 1)
        #expect(reservation.reservationID.hasPrefix("r-"))
        #expect(launched.id.hasPrefix("i-"))
        #expect(launched.subnetID == subnet.id)
        #expect(launched.imageID == "ami-12c6146b")
        #expect(launched.instanceType == "t3.micro")
        #expect(launched.tags["conductor:deployment"] == deployment)
        let privateIP = try #require(launched.privateIP)
        #expect(privateIP.hasPrefix("10.231.9."), "moto gave \(privateIP), outside 10.231.9.0/24")
        #expect(launched.launchTime != nil)

        let found = try await client.describeInstances(filters: [.tag("conductor:deployment", deployment)])
        #expect(found.map(\.id) == [launched.id])
        #expect(found.first?.privateIP == privateIP)
        #expect(found.first?.tags == ["conductor:deployment": deployment, "Name": "web-1"])
        let live = try await client.describeInstances(filters: [.tag("conductor:deployment", deployment), .instanceState(.pending, .running)])
        #expect(live.map(\.id) == [launched.id])

        #expect(try await client.userData(instanceID: launched.id) == userData)

        try await client.createTags(resourceIDs: [launched.id], tags: ["conductor:role": "db"])
        let retagged = try await client.describeInstances(ids: [launched.id])
        #expect(retagged.first?.tags["conductor:role"] == "db")

        let changes = try await client.terminateInstances(ids: [launched.id])
        #expect(changes.map(\.instanceID) == [launched.id])
        let current = try #require(changes.first?.currentState)
        #expect([.shuttingDown, .terminated].contains(current))
        let after = try await client.describeInstances(ids: [launched.id])
        #expect(after.first.map { [.shuttingDown, .terminated].contains($0.state) } == true)
        let stillLive = try await client.describeInstances(filters: [.tag("conductor:deployment", deployment), .instanceState(.pending, .running)])
        #expect(stillLive.isEmpty)
    }

    /// EC2 answers a repeated RunInstances with the same ClientToken with the instances of
    /// the first. moto 5.2 stores the token but launches again (docs/ec2.md).
    @Test func clientTokenOnMoto() async throws {
        let client = try Self.client()
        let deployment = "token-\(UUID().uuidString.prefix(8))"
        let request = EC2RunInstancesRequest(
            imageID: "ami-12c6146b", instanceType: "t3.micro", tags: ["conductor:deployment": deployment], clientToken: "conductor-\(deployment)")
        let first = try await client.runInstances(request)
        let second = try await client.runInstances(request)
        let all = try await client.describeInstances(filters: [.tag("conductor:deployment", deployment)])
        withKnownIssue("moto does not honour ClientToken: a repeated RunInstances launches again", isIntermittent: true) {
            #expect(second.instances.map(\.id) == first.instances.map(\.id))
            #expect(all.count == 1)
        }
        _ = try await client.terminateInstances(ids: all.map(\.id))
    }

    @Test func unknownInstanceIsNotFound() async throws {
        let client = try Self.client()
        let describe = try await #require(throws: EC2Error.self) {
            _ = try await client.describeInstances(ids: ["i-0123456789abcdef0"])
        }
        #expect(describe.kind == .notFound)
        #expect(describe.code == "InvalidInstanceID.NotFound")
        #expect(describe.httpStatus == 400)
        #expect(describe.attempts == 1)
        #expect(describe.description.hasPrefix("EC2 does not know what DescribeInstances named (InvalidInstanceID.NotFound)"))
        let terminate = try await #require(throws: EC2Error.self) {
            _ = try await client.terminateInstances(ids: ["i-0123456789abcdef0"])
        }
        #expect(terminate.kind == .notFound)
        // A filter that matches nothing is no error.
        #expect(try await client.describeInstances(filters: [.tag("conductor:deployment", "none-\(UUID())")]).isEmpty)
    }

    /// Regions are apart: an instance launched in us-east-1 is unknown in eu-west-1. (And
    /// an instance launched without user data has none.)
    @Test func anotherRegionDoesNotKnowTheInstance() async throws {
        let client = try Self.client(region: "us-east-1")
        let launched = try #require(try await client.runInstances(EC2RunInstancesRequest(imageID: "ami-12c6146b", instanceType: "t3.micro")).instances.first)
        #expect(try await client.userData(instanceID: launched.id) == nil)
        let elsewhere = try Self.client(region: "eu-west-1")
        let error = try await #require(throws: EC2Error.self) {
            _ = try await elsewhere.describeInstances(ids: [launched.id])
        }
        #expect(error.kind == .notFound)
        _ = try await client.terminateInstances(ids: [launched.id])
    }

    /// DescribeInstances follows NextToken: six reservations, pages of five.
    @Test func describeFollowsNextToken() async throws {
        let client = try Self.client()
        let deployment = "pages-\(UUID().uuidString.prefix(8))"
        var launched: [String] = []
        for index in 1...6 {
            let reservation = try await client.runInstances(EC2RunInstancesRequest(
                imageID: "ami-12c6146b", instanceType: "t3.micro", tags: ["conductor:deployment": deployment, "Name": "node-\(index)"]))
            launched += reservation.instances.map(\.id)
        }
        let found = try await client.describeInstances(filters: [.tag("conductor:deployment", deployment)], pageSize: 5)
        #expect(Set(found.map(\.id)) == Set(launched))
        #expect(found.count == 6)
        _ = try await client.terminateInstances(ids: launched)
    }

    /// Nothing listening at the endpoint: a transport error naming it, after the retries.
    @Test func endpointDownIsTransport() async throws {
        let port = try await Self.closedPort()
        let down = URL(string: "http://127.0.0.1:\(port)")!
        let client = EC2Client(configuration: EC2Configuration(
            region: "us-east-1", credentials: AWSCredentials(accessKeyID: "AKIDMOTOTESTING", secretAccessKey: "x"), endpoint: down,
            requestTimeout: .seconds(2), retry: EC2RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10))))
        let error = try await #require(throws: EC2Error.self) {
            _ = try await client.describeInstances()
        }
        #expect(error.kind == .transport)
        #expect(error.attempts == 2)
        #expect(error.description.hasPrefix("could not reach EC2 at http://127.0.0.1:\(port) for DescribeInstances: connection refused"))
    }

    static func closedPort() async throws -> Int {
        let server = try await ScriptedEC2Server.start { _, _ in .silence }
        await server.stop()
        return server.port
    }
}
