/// Publisher flow control, in the spirit of RabbitMQ's credit flow: when a queue's
/// backlog or the broker's total of held body bytes passes its high watermark, the
/// connections publishing into it are no longer read (their `read` events are held by
/// `BrokerConnection`) until the backlog is down to the low watermark. Memory stays
/// bounded and, as the loop stops spending itself on a flooding publisher, consumers'
/// acks are read and answered with new deliveries at once.
///
/// A connection that consumes (has consumers or unacknowledged deliveries) is never
/// blocked: its acks may be what drains the queue. Lives on the broker loop.
final class FlowController {
    let limits: BrokerConfiguration.FlowLimits
    /// Body bytes of ready and unacknowledged messages, summed over queues.
    private(set) var heldBytes = 0
    private var blockedByMemory: [BrokerConnection] = []

    init(limits: BrokerConfiguration.FlowLimits) {
        self.limits = limits
    }

    var blockerID: ObjectIdentifier { ObjectIdentifier(self) }

    @inline(__always)
    func add(_ bytes: Int) {
        self.heldBytes &+= bytes
    }

    @inline(__always)
    func remove(_ bytes: Int) {
        self.heldBytes &-= bytes
        if !self.blockedByMemory.isEmpty, self.heldBytes <= self.limits.resumeBytes { self.resume() }
    }

    /// Called after a publish: past the memory high watermark the publisher stops being read.
    @inline(__always)
    func published(by connection: BrokerConnection) {
        guard self.limits.maxBytes > 0, self.heldBytes > self.limits.maxBytes else { return }
        if connection.blockReading(by: self.blockerID) { self.blockedByMemory.append(connection) }
    }

    private func resume() {
        let connections = self.blockedByMemory
        self.blockedByMemory.removeAll()
        for connection in connections { connection.unblockReading(by: self.blockerID) }
    }
}
