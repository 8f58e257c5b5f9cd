import Foundation

/// An instance as DescribeInstances and RunInstances report it.
public struct EC2Instance: Sendable, Equatable {
    public var id: String
    public var state: EC2InstanceState
    public var privateIP: String?
    public var publicIP: String?
    public var tags: [String: String]
    public var imageID: String?
    public var instanceType: String?
    public var subnetID: String?
    public var vpcID: String?
    public var availabilityZone: String?
    public var keyName: String?
    public var launchTime: Date?

    public init(
        id: String, state: EC2InstanceState, privateIP: String? = nil, publicIP: String? = nil, tags: [String: String] = [:],
        imageID: String? = nil, instanceType: String? = nil, subnetID: String? = nil, vpcID: String? = nil,
        availabilityZone: String? = nil, keyName: String? = nil, launchTime: Date? = nil
    ) {
        self.id = id
        self.state = state
        self.privateIP = privateIP
        self.publicIP = publicIP
        self.tags = tags
        self.imageID = imageID
        self.instanceType = instanceType
        self.subnetID = subnetID
        self.vpcID = vpcID
        self.availabilityZone = availabilityZone
        self.keyName = keyName
        self.launchTime = launchTime
    }

    /// An `instancesSet` item.
    init?(_ item: EC2XMLElement) {
        guard let id = item.string("instanceId") else { return nil }
        self.init(
            id: id,
            state: EC2InstanceState(item.string("instanceState", "name") ?? ""),
            privateIP: item.string("privateIpAddress"),
            publicIP: item.string("ipAddress"),
            tags: EC2Instance.tags(item),
            imageID: item.string("imageId"),
            instanceType: item.string("instanceType"),
            subnetID: item.string("subnetId"),
            vpcID: item.string("vpcId"),
            availabilityZone: item.string("placement", "availabilityZone"),
            keyName: item.string("keyName"),
            launchTime: item.string("launchTime").flatMap(EC2Instance.parseTime)
        )
    }

    static func tags(_ element: EC2XMLElement) -> [String: String] {
        var tags: [String: String] = [:]
        for tag in element.items("tagSet") {
            if let key = tag.string("key") {
                tags[key] = tag.child("value")?.text ?? ""
            }
        }
        return tags
    }

    /// `2026-11-20T10:00:00.000Z`, with or without the fraction.
    static func parseTime(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}

/// An instance's lifecycle state. Unknown names are kept as they came.
public enum EC2InstanceState: Sendable, Hashable, CustomStringConvertible {
    case pending, running, shuttingDown, terminated, stopping, stopped
    case other(String)

    public init(_ name: String) {
        switch name {
        case "pending": self = .pending
        case "running": self = .running
        case "shutting-down": self = .shuttingDown
        case "terminated": self = .terminated
        case "stopping": self = .stopping
        case "stopped": self = .stopped
        default: self = .other(name)
        }
    }

    /// EC2's own name (`shutting-down`).
    public var name: String {
        switch self {
        case .pending: "pending"
        case .running: "running"
        case .shuttingDown: "shutting-down"
        case .terminated: "terminated"
        case .stopping: "stopping"
        case .stopped: "stopped"
        case .other(let name): name
        }
    }

    public var description: String { self.name }
}

/// One instance's state change, as TerminateInstances reports it.
public struct EC2InstanceStateChange: Sendable, Equatable {
    public var instanceID: String
    public var previousState: EC2InstanceState
    public var currentState: EC2InstanceState

    public init(instanceID: String, previousState: EC2InstanceState, currentState: EC2InstanceState) {
        self.instanceID = instanceID
        self.previousState = previousState
        self.currentState = currentState
    }
}

/// A DescribeInstances / DescribeSubnets filter: `tag:conductor:deployment` = [...],
/// `instance-state-name` = [...]. A resource matches when it matches every filter, and a
/// filter when it matches any of its values.
public struct EC2Filter: Sendable, Equatable {
    public var name: String
    public var values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }

    /// Instances (or subnets) whose tag `key` has one of `values`.
    public static func tag(_ key: String, _ values: String...) -> EC2Filter {
        EC2Filter(name: "tag:\(key)", values: values)
    }

    /// Instances in one of `states`.
    public static func instanceState(_ states: EC2InstanceState...) -> EC2Filter {
        EC2Filter(name: "instance-state-name", values: states.map(\.name))
    }
}

/// What RunInstances launches.
public struct EC2RunInstancesRequest: Sendable, Equatable {
    public var imageID: String
    public var instanceType: String
    public var minCount: Int
    public var maxCount: Int
    public var keyName: String?
    public var securityGroupIDs: [String]
    public var subnetID: String?
    /// The user data as the instance will read it; the client base64-encodes it.
    public var userData: String?
    /// Tags put on the instances as they are created (a TagSpecification for `instance`).
    public var tags: [String: String]
    /// Makes the launch idempotent: a repeated RunInstances with the same token returns
    /// the instances of the first instead of launching more. Nil: the client makes one
    /// per call, so its own retries can never launch twice.
    public var clientToken: String?

    public init(
        imageID: String, instanceType: String, minCount: Int = 1, maxCount: Int = 1, keyName: String? = nil,
        securityGroupIDs: [String] = [], subnetID: String? = nil, userData: String? = nil, tags: [String: String] = [:],
        clientToken: String? = nil
    ) {
        self.imageID = imageID
        self.instanceType = instanceType
        self.minCount = minCount
        self.maxCount = maxCount
        self.keyName = keyName
        self.securityGroupIDs = securityGroupIDs
        self.subnetID = subnetID
        self.userData = userData
        self.tags = tags
        self.clientToken = clientToken
    }
}

/// What RunInstances answered.
public struct EC2Reservation: Sendable, Equatable {
    public var reservationID: String
    public var instances: [EC2Instance]

    public init(reservationID: String, instances: [EC2Instance]) {
        self.reservationID = reservationID
        self.instances = instances
    }
}

public struct EC2Vpc: Sendable, Equatable {
    public var id: String
    public var cidrBlock: String?
    public var state: String?

    public init(id: String, cidrBlock: String? = nil, state: String? = nil) {
        self.id = id
        self.cidrBlock = cidrBlock
        self.state = state
    }
}

public struct EC2Subnet: Sendable, Equatable {
    public var id: String
    public var vpcID: String?
    public var cidrBlock: String?
    public var availabilityZone: String?
    public var state: String?
    public var tags: [String: String]

    public init(id: String, vpcID: String? = nil, cidrBlock: String? = nil, availabilityZone: String? = nil, state: String? = nil, tags: [String: String] = [:]) {
        self.id = id
        self.vpcID = vpcID
        self.cidrBlock = cidrBlock
        self.availabilityZone = availabilityZone
        self.state = state
        self.tags = tags
    }

    /// A `subnet` element or a `subnetSet` item.
    init?(_ element: EC2XMLElement) {
        guard let id = element.string("subnetId") else { return nil }
        self.init(
            id: id, vpcID: element.string("vpcId"), cidrBlock: element.string("cidrBlock"),
            availabilityZone: element.string("availabilityZone"), state: element.string("state"),
            tags: EC2Instance.tags(element)
        )
    }
}
