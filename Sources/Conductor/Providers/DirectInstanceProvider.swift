import Mesh

/// A provider whose instances run no agent: they reach the coordinator another way (they
/// phone home over HTTP). The roll-out asks such a provider where it would use the bus:
/// its contacts stand for heartbeats, `facts` for the `refresh` call, `deliver` for
/// sending the job and collecting the answer. docs/launch.md, "Phone home".
public protocol DirectInstanceProvider: InstanceProvider {
    /// Every contact one of its instances makes from now on, with the facts it reported so
    /// far. Registered when called: subscribe before any instance starts.
    func contacts() -> AsyncStream<DirectContact>
    /// The facts the instance reported; nil before it made contact.
    func facts(instanceID: String) async -> MeshValue?
    /// The job, already recorded (so the instance can fetch it), is the instance's
    /// configuration now: waits until the instance took it, at most `timeout`.
    func deliver(_ job: ConfigurationJob, instanceID: String, timeout: Duration) async -> Result<JobResult, DirectDeliveryFailure>
    /// A progress line once the instance is started: what its user hands it.
    func handOver(_ handle: InstanceHandle, member: String) -> String?
}

/// An instance of a `DirectInstanceProvider` made contact.
public struct DirectContact: Sendable, Hashable {
    public var instanceID: String
    /// What it reported (a map, like an agent's facts).
    public var facts: MeshValue

    public init(instanceID: String, facts: MeshValue) {
        self.instanceID = instanceID
        self.facts = facts
    }
}

/// Why a delivered job has no answer.
public struct DirectDeliveryFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { self.reason }
}
