import AMQPProtocol
import Foundation
import NIOCore

extension BrokerCore {
    // MARK: - Opening the data directory

    /// Locks and reads the data directory, rebuilds durable exchanges, queues, bindings
    /// and persistent messages, and starts the writer. Runs on the loop before anything
    /// listens. `onDurable`/`onFailure` are called on the writer's thread.
    func openStore(
        directory: String,
        onDurable: @escaping @Sendable (UInt64) -> Void,
        onFailure: @escaping @Sendable (String) -> Void
    ) throws(StoreError) -> MessageLog {
        let log = MessageLog(directory: directory, onDurable: onDurable, onFailure: onFailure)
        try log.lock()
        var meta: [MetaRecord] = []
        let metaPath = directory + "/meta.log"
        if let bytes = try MessageLog.read(metaPath) {
            let (payloads, valid) = RecordFraming.records(in: bytes)
            meta = payloads.compactMap { MetaRecord(payload: $0) }
            if valid < bytes.readableBytes { self.logger.warning("meta.log: ignoring a torn record at its end", metadata: ["broker_data_dir": "\(directory)"]) }
        }
        // One segment in memory at a time: replay keeps no bodies, so each file's buffer
        // goes before the next is read.
        var recovered = RecoveredState(meta: meta)
        var sizes: [UInt32: Int] = [:]
        let numbers = log.segmentNumbers()
        for number in numbers {
            let path = MessageLog.segmentPath(directory, number)
            guard let bytes = try MessageLog.read(path) else { continue }
            let (located, valid) = RecordFraming.locatedRecords(in: bytes)
            if valid < bytes.readableBytes {
                // A crash mid-write: the tail never got confirmed, so it is dropped.
                MessageLog.truncate(path, to: valid)
            }
            sizes[number] = valid
            recovered.replay(segment: number, records: located.compactMap { entry in
                LogRecord(payload: entry.payload).map {
                    RecoveredState.LocatedRecord(record: $0, offset: entry.offset, size: RecordFraming.headerSize + entry.payload.readableBytes)
                }
            })
        }
        recovered.finish()
        let newSegment = (numbers.last ?? 0) + 1
        let obsolete = recovered.obsoleteSegments
        let oldest = numbers.first { !obsolete.contains($0) && sizes[$0] != nil } ?? newSegment
        let bodies = try Self.readResidentBodies(recovered, limit: self.configuration.storePageOutBytes, directory: directory)
        var snapshot = ByteBufferAllocator().buffer(capacity: 4096)
        for record in recovered.snapshot { record.encode(into: &snapshot) }
        try log.start(metaSnapshot: snapshot, segment: newSegment, deleting: obsolete)

        let store = BrokerStore(
            log: log, eventLoop: self.eventLoop, recovered: recovered, segment: newSegment, oldestSegment: oldest,
            segments: sizes.filter { !obsolete.contains($0.key) }, segmentSize: self.configuration.storeSegmentBytes
        )
        self.store = store
        for vhost in self.vhosts.values { vhost.store = store }
        self.restore(recovered, bodies: bodies, store: store)
        return log
    }

    /// The bodies recovery keeps in memory (`RecoveredState.residentMessages`), copied out
    /// of their segments one file at a time; the others are paged in at delivery.
    private static func readResidentBodies(_ recovered: RecoveredState, limit: Int, directory: String) throws(StoreError) -> [UInt64: ByteBuffer] {
        let resident = recovered.residentMessages(limit: limit)
        guard !resident.isEmpty else { return [:] }
        var wanted: [UInt32: [RecoveredState.Message]] = [:]
        var seen: Set<UInt64> = []
        for (_, messages) in recovered.messages {
            for message in messages where resident.contains(message.stored.id) && seen.insert(message.stored.id).inserted {
                wanted[message.segment, default: []].append(message)
            }
        }
        var bodies: [UInt64: ByteBuffer] = [:]
        bodies.reserveCapacity(resident.count)
        for (number, messages) in wanted {
            let path = MessageLog.segmentPath(directory, number)
            guard let file = try MessageLog.read(path) else { throw StoreError("\(path) disappeared while the broker started") }
            for message in messages {
                guard let bytes = file.viewBytes(at: file.readerIndex + message.bodyOffset, length: message.bodySize) else {
                    throw StoreError("\(path) is shorter than its records say")
                }
                // A copy, not a slice: a slice would keep the whole file in memory.
                var body = ByteBufferAllocator().buffer(capacity: message.bodySize)
                body.writeBytes(bytes)
                bodies[message.stored.id] = body
            }
        }
        return bodies
    }

    private func restore(_ recovered: RecoveredState, bodies: [UInt64: ByteBuffer], store: BrokerStore) {
        var restoredMessages = 0
        var pagedOut = 0
        for stored in recovered.exchanges {
            guard let vhost = self.vhosts[stored.vhost], let type = ExchangeType(rawValue: stored.type) else { continue }
            vhost.exchanges[stored.name] = Exchange(
                name: stored.name, type: type, durable: true, autoDelete: stored.autoDelete, isInternal: stored.isInternal, arguments: stored.arguments
            )
        }
        // One Message per id, shared by the queues it is in (as when it was published), so
        // compaction rewrites one record listing them all.
        var messages: [UInt64: Message] = [:]
        var restoredQueues: [BrokerQueue] = []
        let wallNow = RecoveredExpiry.wallClockMilliseconds()
        let clockNow = BrokerClock.milliseconds()
        for stored in recovered.queues {
            guard let vhost = self.vhosts[stored.vhost] else {
                self.logger.warning("data directory has queue '\(stored.name)' of vhost '\(stored.vhost)', which is not configured; left out")
                continue
            }
            let settings = (try? QueueArguments(stored.arguments, queue: stored.name, vhost: stored.vhost)) ?? QueueArguments()
            let queue = BrokerQueue(
                name: stored.name, durable: true, exclusiveOwner: nil, autoDelete: stored.autoDelete, arguments: stored.arguments,
                vhost: vhost, settings: settings
            )
            queue.storeID = stored.id
            vhost.queues[stored.name] = queue
            restoredQueues.append(queue)
            for entry in recovered.messages[stored.id] ?? [] {
                let message: Message
                if let shared = messages[entry.stored.id] {
                    message = shared
                } else {
                    if let body = bodies[entry.stored.id] {
                        message = Message(exchange: entry.stored.exchange, routingKey: entry.stored.routingKey, properties: entry.stored.properties, body: body)
                    } else {
                        message = Message(
                            exchange: entry.stored.exchange, routingKey: entry.stored.routingKey, properties: entry.stored.properties, pagedOutSize: entry.bodySize
                        )
                        pagedOut += 1
                    }
                    store.adopt(message, recovered: entry)
                    messages[entry.stored.id] = message
                }
                let ttl = [settings.messageTTL, (try? MessageExpiration.milliseconds(message.properties.expiration)) ?? nil].compactMap { $0 }.min()
                let expiresAt = RecoveredExpiry.expiresAt(arrival: message.arrival, ttl: ttl, wallNow: wallNow, clockNow: clockNow)
                queue.enqueueRecovered(message, expiresAt: expiresAt)
                restoredMessages += 1
            }
        }
        for binding in recovered.bindings {
            guard let vhost = self.vhosts[binding.vhost], let source = vhost.exchanges[binding.source] else { continue }
            if binding.destinationIsQueue {
                guard let queue = vhost.queues[binding.destination] else { continue }
                source.bind(.queue(queue), key: binding.key, arguments: binding.arguments)
                if !queue.boundFrom.contains(where: { $0 === source }) { queue.boundFrom.append(source) }
            } else {
                guard let destination = vhost.exchanges[binding.destination] else { continue }
                source.bind(.exchange(destination), key: binding.key, arguments: binding.arguments)
                if !destination.incomingSources.contains(where: { $0 === source }) { destination.incomingSources.append(source) }
            }
        }
        // Messages that expired while the broker was down go now (dead-lettered if the
        // queue says so, once the bindings a dead-letter route needs are back).
        for queue in restoredQueues { queue.expireHeads() }
        store.restored()
        self.logger.info("data directory read", metadata: [
            "broker_exchanges": "\(recovered.exchanges.count)", "broker_queues": "\(recovered.queues.count)",
            "broker_bindings": "\(recovered.bindings.count)", "broker_messages": "\(restoredMessages)",
            "broker_paged_out": "\(pagedOut)",
        ])
    }

    // MARK: - Durability

    /// The writer has fsynced everything up to `ticket`: confirms waiting for it go out.
    func storeDurable(upTo ticket: UInt64) {
        guard let store = self.store else { return }
        store.durable(upTo: ticket)
        if !self.pagingQueues.isEmpty {
            for (id, queue) in self.pagingQueues where !queue.pageOut(into: store, limit: self.configuration.storePageOutBytes) {
                self.pagingQueues[id] = nil
            }
        }
        guard !self.durabilityWaiters.isEmpty else { return }
        let waiters = Array(self.durabilityWaiters.values)
        for channel in waiters {
            if channel.durabilityAdvanced(to: store.durableTicket) {
                self.durabilityWaiters[ObjectIdentifier(channel)] = nil
            }
        }
        self.flushDirtyConnections()
    }

    func storeFailed(_ reason: String) {
        self.logger.critical("the data directory cannot be written; persistent messages are no longer confirmed", metadata: ["error": "\(reason)"])
        self.store?.failed(reason)
        let waiters = Array(self.durabilityWaiters.values)
        self.durabilityWaiters.removeAll()
        for channel in waiters { channel.diskFailed() }
        self.flushDirtyConnections()
    }

    /// Whether a message routed to `queues` gets written: persistent, to a durable queue.
    func persistIfNeeded(_ message: Message, queues: [BrokerQueue]) -> UInt64 {
        guard message.isPersistent, let store = self.store else { return 0 }
        var ids: [UInt64] = []
        for queue in queues where queue.storeID != 0 { ids.append(queue.storeID) }
        guard !ids.isEmpty else { return 0 }
        return store.persist(message, queues: ids)
    }
}
