import AMQPProtocol
import Foundation
import NIOCore

extension BrokerCore {
    // MARK: - Dead lettering

    /// Publishes a copy of `queued` to `exchange` with the `x-death` header RabbitMQ writes.
    /// A missing exchange drops it (as RabbitMQ does), and so does a target queue the
    /// message would reach again through a cycle of automatic deaths (`DeadLetter.closesCycle`).
    func deadLetter(_ queued: QueuedMessage, from queue: BrokerQueue, exchange name: String, reason: String) {
        let vhost = queue.vhost
        let original = queued.message
        // Another queue holding the same message may have paged its body out.
        if original.isPagedOut { self.store?.pageIn(original) }
        let routingKey = queue.settings.deadLetterRoutingKey ?? original.routingKey
        let properties = DeadLetter.properties(
            of: original, queue: queue.name, reason: reason, now: UInt64(Date().timeIntervalSince1970)
        )
        let message = Message(exchange: name, routingKey: routingKey, properties: properties, body: original.body)
        var targets: [BrokerQueue] = []
        if name.isEmpty {
            if let target = vhost.queues[routingKey] { targets.append(target) }
        } else if let exchange = vhost.exchanges[name] {
            self.route(exchange: exchange, routingKey: routingKey, headers: properties.headers, into: &targets, vhost: vhost)
        }
        targets.removeAll { target in
            target.refuses(message) || DeadLetter.closesCycle(deaths: properties.headers, reason: reason, into: target.name)
        }
        guard !targets.isEmpty else { return }
        _ = self.persistIfNeeded(message, queues: targets)
        for target in targets { target.enqueue(message) }
    }

    /// Deletes a queue nobody is attached to any more (x-expires).
    func deleteQueue(_ queue: BrokerQueue) {
        for consumer in queue.removeAllConsumers() {
            consumer.channel.consumerCancelledByServer(consumer)
        }
        queue.vhost.deleteQueue(queue)
    }
}

/// The header changes of dead lettering, as RabbitMQ 3.10 makes them.
enum DeadLetter {
    /// Whether dead-lettering into `target` would go round a cycle nobody chose, so the
    /// message is dropped for that queue (RabbitMQ 3.10's rule). `headers` are the new
    /// message's, with this death already at the front of `x-death`. A `rejected` death now
    /// never closes a cycle. Otherwise the deaths since the message last died in `target`,
    /// and that death itself, must all be automatic (`expired`, `maxlen`): one `rejected`
    /// among them, or an entry that is not a table (a client wrote it), lets the message go on.
    static func closesCycle(deaths headers: FieldTable?, reason: String, into target: String) -> Bool {
        guard reason != "rejected", case .array(let deaths)? = headers?["x-death"] else { return false }
        for death in deaths {
            guard case .table(let table) = death, table["reason"]?.stringValue != "rejected" else { return false }
            if table["queue"]?.stringValue == target { return true }
        }
        return false
    }

    static func properties(of message: Message, queue: String, reason: String, now: UInt64) -> BasicProperties {
        var properties = message.properties
        var headers = properties.headers ?? [:]
        var deaths: [FieldValue] = []
        if case .array(let existing)? = headers["x-death"] { deaths = existing }
        let index = deaths.firstIndex { value in
            guard case .table(let table) = value else { return false }
            return table["queue"]?.stringValue == queue && table["reason"]?.stringValue == reason
        }
        if let index, case .table(var table) = deaths[index] {
            table.storage["count"] = .int64((table["count"]?.integerValue ?? 0) + 1)
            table.storage["time"] = .timestamp(now)
            deaths.remove(at: index)
            deaths.insert(.table(table), at: 0)
        } else {
            var table: FieldTable = [
                "count": .int64(1),
                "reason": .string(reason),
                "queue": .string(queue),
                "time": .timestamp(now),
                "exchange": .string(message.exchange),
                "routing-keys": .array([.string(message.routingKey)]),
            ]
            if let expiration = properties.expiration { table.storage["original-expiration"] = .string(expiration) }
            deaths.insert(.table(table), at: 0)
        }
        headers.storage["x-death"] = .array(deaths)
        if headers["x-first-death-reason"] == nil {
            headers.storage["x-first-death-reason"] = .string(reason)
            headers.storage["x-first-death-queue"] = .string(queue)
            headers.storage["x-first-death-exchange"] = .string(message.exchange)
        }
        properties.headers = headers
        // The per-message TTL is spent; it travels on only as original-expiration.
        properties.expiration = nil
        return properties
    }
}
