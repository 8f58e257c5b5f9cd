import NIOCore

/// What a data directory held when the broker started: the durable topology and, per
/// durable queue, the persistent messages not yet removed, in arrival order. Built by
/// replaying meta.log and then every segment, oldest first (pure: tested without files).
struct RecoveredState {
    struct Message {
        var stored: StoredMessage
        var segment: UInt32
    }

    private struct EntityKey: Hashable {
        var vhost: String
        var name: String
    }

    private(set) var exchanges: [StoredExchange] = []
    private(set) var queues: [StoredQueue] = []
    private(set) var bindings: [StoredBinding] = []
    /// Queue id -> its messages, oldest first.
    private(set) var messages: [UInt64: [Message]] = [:]
    /// Segment -> (message, queue) pairs still alive in it.
    private(set) var live: [UInt32: Int] = [:]
    private(set) var nextMessageID: UInt64 = 1
    private(set) var nextQueueID: UInt64 = 1

    init(meta: [MetaRecord], segments: [(number: UInt32, records: [LogRecord])]) {
        var exchanges: [EntityKey: StoredExchange] = [:]
        var exchangeOrder: [EntityKey] = []
        var queues: [EntityKey: StoredQueue] = [:]
        var queueOrder: [EntityKey] = []
        var bindings: [StoredBinding] = []
        for record in meta {
            switch record {
            case .exchange(let exchange):
                let key = EntityKey(vhost: exchange.vhost, name: exchange.name)
                if exchanges[key] == nil { exchangeOrder.append(key) }
                exchanges[key] = exchange
            case .exchangeDeleted(let vhost, let name):
                exchanges[EntityKey(vhost: vhost, name: name)] = nil
                exchangeOrder.removeAll { $0 == EntityKey(vhost: vhost, name: name) }
                bindings.removeAll { $0.vhost == vhost && ($0.source == name || (!$0.destinationIsQueue && $0.destination == name)) }
            case .queue(let queue):
                let key = EntityKey(vhost: queue.vhost, name: queue.name)
                if queues[key] == nil { queueOrder.append(key) }
                queues[key] = queue
                self.nextQueueID = Swift.max(self.nextQueueID, queue.id + 1)
            case .queueDeleted(let vhost, let name):
                queues[EntityKey(vhost: vhost, name: name)] = nil
                queueOrder.removeAll { $0 == EntityKey(vhost: vhost, name: name) }
                bindings.removeAll { $0.vhost == vhost && $0.destinationIsQueue && $0.destination == name }
            case .binding(let binding):
                if !bindings.contains(binding) { bindings.append(binding) }
            case .unbinding(let binding):
                bindings.removeAll { $0 == binding }
            }
        }
        self.exchanges = exchangeOrder.compactMap { exchanges[$0] }
        self.queues = queueOrder.compactMap { queues[$0] }
        self.bindings = bindings
        let liveQueues = Set(self.queues.map(\.id))

        // Message id -> (segment, the message, queues it is still in).
        var alive: [UInt64: (segment: UInt32, stored: StoredMessage, queues: Set<UInt64>)] = [:]
        for (number, records) in segments {
            for record in records {
                switch record {
                case .publish(let stored):
                    // A later copy of the same id (compaction) replaces the earlier one.
                    let queues = Set(stored.queues).intersection(liveQueues)
                    alive[stored.id] = queues.isEmpty ? nil : (number, stored, queues)
                    self.nextMessageID = Swift.max(self.nextMessageID, stored.id + 1)
                case .remove(let id, let queue):
                    if var entry = alive[id] {
                        entry.queues.remove(queue)
                        alive[id] = entry.queues.isEmpty ? nil : entry
                    }
                }
            }
            self.live[number] = 0
        }
        for (_, entry) in alive {
            self.live[entry.segment, default: 0] += entry.queues.count
            for queue in entry.queues {
                self.messages[queue, default: []].append(Message(stored: entry.stored, segment: entry.segment))
            }
        }
        for queue in self.messages.keys { self.messages[queue]!.sort { $0.stored.id < $1.stored.id } }
    }

    /// The topology as records, to start a compacted meta.log.
    var snapshot: [MetaRecord] {
        self.exchanges.map { .exchange($0) } + self.queues.map { .queue($0) } + self.bindings.map { .binding($0) }
    }

    /// Segments that can go: the oldest ones with nothing alive. A segment in the middle
    /// stays even when empty, because its removal records may be what keeps messages of
    /// an older segment from coming back.
    var obsoleteSegments: [UInt32] {
        var obsolete: [UInt32] = []
        for number in self.live.keys.sorted() {
            guard self.live[number] == 0 else { break }
            obsolete.append(number)
        }
        return obsolete
    }
}
