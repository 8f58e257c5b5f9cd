import Glibc
import NIOCore

/// What a data directory held when the broker started: the durable topology and, per
/// durable queue, the persistent messages not yet removed, in arrival order. Built by
/// replaying meta.log and then every segment, oldest first (pure: tested without files).
struct RecoveredState {
    /// A surviving message. Its body is not kept (recovery would otherwise hold every
    /// segment in memory): `bodyOffset`/`bodySize` say where to read it.
    struct Message {
        var stored: StoredMessage
        var segment: UInt32
        /// Where the body starts in the segment file, and its length.
        var bodyOffset: Int
        var bodySize: Int
        /// The whole framed record's size (what the message occupies on disk).
        var recordSize: Int
        /// The durable queues it is still in.
        var queues: [UInt64]
    }

    /// A record of a segment and where it lies in the file (`offset`, framed `size`).
    struct LocatedRecord {
        var record: LogRecord
        var offset: Int
        var size: Int
    }

    private struct EntityKey: Hashable {
        var vhost: String
        var name: String
    }

    private(set) var exchanges: [StoredExchange] = []
    private(set) var queues: [StoredQueue] = []
    private(set) var bindings: [StoredBinding] = []
    /// Queue id -> its messages, oldest first (filled by `finish`).
    private(set) var messages: [UInt64: [Message]] = [:]
    /// Segment -> (message, queue) pairs still alive in it (filled by `finish`).
    private(set) var live: [UInt32: Int] = [:]
    private(set) var nextMessageID: UInt64 = 1
    private(set) var nextQueueID: UInt64 = 1
    private var liveQueues: Set<UInt64> = []
    /// Message id -> the message and the queues it is still in, while replaying.
    private var alive: [UInt64: (message: Message, queues: Set<UInt64>)] = [:]

    /// Replays `segments` at once (records located as they would be in a file).
    init(meta: [MetaRecord], segments: [(number: UInt32, records: [LogRecord])]) {
        self.init(meta: meta)
        for (number, records) in segments {
            var offset = 0
            var located: [LocatedRecord] = []
            for record in records {
                var encoded = ByteBuffer()
                record.encode(into: &encoded)
                located.append(LocatedRecord(record: record, offset: offset, size: encoded.readableBytes))
                offset += encoded.readableBytes
            }
            self.replay(segment: number, records: located)
        }
        self.finish()
    }

    /// The topology from meta.log; then `replay` every segment, oldest first, and `finish`.
    init(meta: [MetaRecord]) {
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
        self.liveQueues = Set(self.queues.map(\.id))
    }

    /// Applies one segment's records. Bodies are dropped here, so the segment's buffer can
    /// go once this returns.
    mutating func replay(segment number: UInt32, records: [LocatedRecord]) {
        for located in records {
            switch located.record {
            case .publish(var stored):
                // A later copy of the same id (compaction) replaces the earlier one.
                let queues = Set(stored.queues).intersection(self.liveQueues)
                let bodySize = stored.body.readableBytes
                stored.body = ByteBuffer()
                // The body is the record's last field.
                let message = Message(
                    stored: stored, segment: number, bodyOffset: located.offset + located.size - bodySize, bodySize: bodySize,
                    recordSize: located.size, queues: []
                )
                self.alive[stored.id] = queues.isEmpty ? nil : (message, queues)
                self.nextMessageID = Swift.max(self.nextMessageID, stored.id + 1)
            case .remove(let id, let queue):
                if var entry = self.alive[id] {
                    entry.queues.remove(queue)
                    self.alive[id] = entry.queues.isEmpty ? nil : entry
                }
            }
        }
        self.live[number] = 0
    }

    /// After the last segment: per queue, its surviving messages in arrival order.
    mutating func finish() {
        for (_, entry) in self.alive {
            var message = entry.message
            message.queues = entry.queues.sorted()
            self.live[message.segment, default: 0] += message.queues.count
            for queue in message.queues { self.messages[queue, default: []].append(message) }
        }
        self.alive.removeAll()
        for queue in self.messages.keys { self.messages[queue]!.sort { $0.stored.id < $1.stored.id } }
    }

    /// The messages whose bodies are read back into memory at start: per queue, the first
    /// ones in arrival order up to `limit` body bytes (0: all); the rest stay on disk and
    /// are paged in at delivery, as `BrokerQueue.pageOut` would have left them.
    func residentMessages(limit: Int) -> Set<UInt64> {
        var resident: Set<UInt64> = []
        for (_, messages) in self.messages {
            var bytes = 0
            for message in messages {
                bytes += message.bodySize
                if limit > 0, bytes > limit { break }
                resident.insert(message.stored.id)
            }
        }
        return resident
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

/// When a recovered message expires, on the `BrokerClock`: its TTL (the shorter of the
/// queue's `x-message-ttl` and its `expiration`) counts from its arrival as RabbitMQ
/// does, not from the restart. Pure: the clocks are arguments.
enum RecoveredExpiry {
    /// 0 for never. `arrival` 0 (a record written before arrival times were kept) counts
    /// from now; a wall clock that went backwards never stretches a TTL past its length.
    /// A message that expired while the broker was down gets `clockNow` (expired now).
    static func expiresAt(arrival: Int64, ttl: Int64?, wallNow: Int64, clockNow: Int64) -> Int64 {
        guard let ttl else { return 0 }
        guard arrival > 0 else { return clockNow + ttl }
        let remaining = Swift.min(ttl, arrival + ttl - wallNow)
        return Swift.max(1, clockNow + Swift.max(0, remaining))
    }

    /// Milliseconds since 1970 (arrival times are wall-clock: they must mean the same
    /// after a restart, which the monotonic `BrokerClock` does not).
    static func wallClockMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
