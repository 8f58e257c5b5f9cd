import Foundation

/// The EC2 actions the `ec2` provider needs, and the VPC/subnet ones its tests use.
extension EC2Client {
    /// RunInstances. Idempotent through its ClientToken (made here when the request has
    /// none), so it is retried like a read.
    public func runInstances(_ request: EC2RunInstancesRequest) async throws -> EC2Reservation {
        var parameters = EC2Parameters()
        parameters.add("ImageId", request.imageID)
        parameters.add("InstanceType", request.instanceType)
        parameters.add("MinCount", request.minCount)
        parameters.add("MaxCount", request.maxCount)
        parameters.add("KeyName", request.keyName)
        parameters.addList("SecurityGroupId", request.securityGroupIDs)
        parameters.add("SubnetId", request.subnetID)
        parameters.add("UserData", request.userData.map { Data($0.utf8).base64EncodedString() })
        if !request.tags.isEmpty {
            parameters.add("TagSpecification.1.ResourceType", "instance")
            parameters.addTags("TagSpecification.1.Tag", request.tags)
        }
        parameters.add("ClientToken", request.clientToken ?? UUID().uuidString)
        let answer = try await self.call("RunInstances", parameters, idempotent: true)
        return EC2Reservation(
            reservationID: answer.string("reservationId") ?? "",
            instances: answer.items("instancesSet").compactMap(EC2Instance.init)
        )
    }

    /// DescribeInstances, every page. `ids` empty: all instances matching `filters`.
    /// An unknown id fails the whole call with `.notFound` (InvalidInstanceID.NotFound);
    /// a filter that matches nothing returns no instances.
    /// `pageSize`: MaxResults (5...1000), only without `ids`, as EC2 requires.
    public func describeInstances(ids: [String] = [], filters: [EC2Filter] = [], pageSize: Int? = nil) async throws -> [EC2Instance] {
        var instances: [EC2Instance] = []
        var nextToken: String?
        repeat {
            var parameters = EC2Parameters()
            parameters.addList("InstanceId", ids)
            parameters.addFilters(filters)
            if ids.isEmpty { parameters.add("MaxResults", pageSize) }
            parameters.add("NextToken", nextToken)
            let answer = try await self.call("DescribeInstances", parameters, idempotent: true)
            for reservation in answer.items("reservationSet") {
                instances += reservation.items("instancesSet").compactMap(EC2Instance.init)
            }
            nextToken = answer.string("nextToken")
        } while nextToken != nil
        return instances
    }

    /// TerminateInstances: each instance's previous and current state.
    public func terminateInstances(ids: [String]) async throws -> [EC2InstanceStateChange] {
        var parameters = EC2Parameters()
        parameters.addList("InstanceId", ids)
        let answer = try await self.call("TerminateInstances", parameters, idempotent: true)
        return answer.items("instancesSet").compactMap { item in
            guard let id = item.string("instanceId") else { return nil }
            return EC2InstanceStateChange(
                instanceID: id,
                previousState: EC2InstanceState(item.string("previousState", "name") ?? ""),
                currentState: EC2InstanceState(item.string("currentState", "name") ?? "")
            )
        }
    }

    /// DescribeInstanceAttribute `userData`, decoded from base64: nil when the instance has
    /// none.
    public func userData(instanceID: String) async throws -> String? {
        var parameters = EC2Parameters()
        parameters.add("InstanceId", instanceID)
        parameters.add("Attribute", "userData")
        let answer = try await self.call("DescribeInstanceAttribute", parameters, idempotent: true)
        guard let encoded = answer.string("userData", "value") else { return nil }
        guard let data = Data(base64Encoded: encoded) else {
            throw EC2Error(
                kind: .server, code: "MalformedResponse", message: "the user data of \(instanceID) is not base64",
                httpStatus: 200, action: "DescribeInstanceAttribute", endpoint: self.configuration.endpoint.absoluteString
            )
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// CreateTags: adds `tags` to each resource, overwriting a tag of the same key.
    public func createTags(resourceIDs: [String], tags: [String: String]) async throws {
        var parameters = EC2Parameters()
        parameters.addList("ResourceId", resourceIDs)
        parameters.addTags("Tag", tags)
        _ = try await self.call("CreateTags", parameters, idempotent: true)
    }

    /// CreateVpc. Not idempotent: not retried after a server or transport failure.
    public func createVpc(cidrBlock: String) async throws -> EC2Vpc {
        var parameters = EC2Parameters()
        parameters.add("CidrBlock", cidrBlock)
        let answer = try await self.call("CreateVpc", parameters, idempotent: false)
        guard let vpc = answer.child("vpc"), let id = vpc.string("vpcId") else {
            throw self.malformed("CreateVpc", "no vpcId in the answer")
        }
        return EC2Vpc(id: id, cidrBlock: vpc.string("cidrBlock"), state: vpc.string("state"))
    }

    /// CreateSubnet. Not idempotent: not retried after a server or transport failure.
    public func createSubnet(vpcID: String, cidrBlock: String, availabilityZone: String? = nil) async throws -> EC2Subnet {
        var parameters = EC2Parameters()
        parameters.add("VpcId", vpcID)
        parameters.add("CidrBlock", cidrBlock)
        parameters.add("AvailabilityZone", availabilityZone)
        let answer = try await self.call("CreateSubnet", parameters, idempotent: false)
        guard let subnet = answer.child("subnet").flatMap(EC2Subnet.init) else {
            throw self.malformed("CreateSubnet", "no subnetId in the answer")
        }
        return subnet
    }

    /// DescribeSubnets, every page.
    public func describeSubnets(ids: [String] = [], filters: [EC2Filter] = []) async throws -> [EC2Subnet] {
        var subnets: [EC2Subnet] = []
        var nextToken: String?
        repeat {
            var parameters = EC2Parameters()
            parameters.addList("SubnetId", ids)
            parameters.addFilters(filters)
            parameters.add("NextToken", nextToken)
            let answer = try await self.call("DescribeSubnets", parameters, idempotent: true)
            subnets += answer.items("subnetSet").compactMap(EC2Subnet.init)
            nextToken = answer.string("nextToken")
        } while nextToken != nil
        return subnets
    }

    private func malformed(_ action: String, _ message: String) -> EC2Error {
        EC2Error(kind: .server, code: "MalformedResponse", message: message, httpStatus: 200, action: action, endpoint: self.configuration.endpoint.absoluteString)
    }
}
