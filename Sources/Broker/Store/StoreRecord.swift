import AMQPProtocol
import NIOCore

/// What the message log holds: a persistent message with the durable queues it went to,
/// and the end of one (message, queue) pair (acked, dropped, expired, purged ...).
enum LogRecord: Equatable {
    case publish(StoredMessage)
    case remove(id: UInt64, queue: UInt64)
}

/// A persistent message as stored: everything needed to rebuild the `Message`.
struct StoredMessage: Equatable {
    var id: UInt64
    var queues: [UInt64]
    var exchange: String
    var routingKey: String
    var properties: BasicProperties
    var body: ByteBuffer
    /// When the broker first received it (wall clock, ms since 1970); 0 when unknown (a
    /// record written before arrival times were kept). TTLs count from it across restarts.
    var arrival: Int64 = 0
}

/// What the metadata log holds: durable exchanges, queues and bindings, added and removed.
enum MetaRecord: Equatable {
    case exchange(StoredExchange)
    case exchangeDeleted(vhost: String, name: String)
    case queue(StoredQueue)
    case queueDeleted(vhost: String, name: String)
    case binding(StoredBinding)
    case unbinding(StoredBinding)
}

struct StoredExchange: Equatable {
    var vhost: String
    var name: String
    var type: String
    var autoDelete: Bool
    var isInternal: Bool
    var arguments: FieldTable
}

struct StoredQueue: Equatable {
    var vhost: String
    var name: String
    /// Unique per declaration: messages name their queues by it, so a queue deleted and
    /// declared again does not get the old one's messages back.
    var id: UInt64
    var autoDelete: Bool
    var arguments: FieldTable
}

struct StoredBinding: Equatable, Hashable {
    var vhost: String
    var source: String
    var destinationIsQueue: Bool
    var destination: String
    var key: String
    var arguments: FieldTable
}

/// The framing both logs use: `length (u32) | crc32 (u32) | kind (u8) | fields`, where
/// length and CRC cover kind and fields. A record cut short or with a wrong CRC ends the
/// log (a crash mid-write); everything after it is ignored and truncated away.
enum RecordFraming {
    static let headerSize = 8

    /// Appends a record with its CRC left 0; `MessageLog` fills CRCs in on its own thread.
    static func append(to buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        let start = buffer.writerIndex
        buffer.writeInteger(0 as UInt32)
        buffer.writeInteger(0 as UInt32)
        body(&buffer)
        buffer.setInteger(UInt32(truncatingIfNeeded: buffer.writerIndex - start - headerSize), at: start)
    }

    /// Fills in the CRC of every record in `buffer` (which holds whole records only).
    static func sealRecords(in buffer: inout ByteBuffer) {
        var index = buffer.readerIndex
        while index + headerSize <= buffer.writerIndex {
            let length = Int(buffer.getInteger(at: index, as: UInt32.self)!)
            let crc = buffer.withUnsafeReadableBytes { raw in
                CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[(index - buffer.readerIndex + headerSize)...].prefix(length)))
            }
            buffer.setInteger(crc, at: index + 4)
            index += headerSize + length
        }
    }

    /// Splits `bytes` into record payloads; returns them and how many bytes were valid.
    static func records(in bytes: ByteBuffer) -> (payloads: [ByteBuffer], validBytes: Int) {
        let (located, valid) = Self.locatedRecords(in: bytes)
        return (located.map(\.payload), valid)
    }

    /// As `records(in:)`, with where each framed record starts in `bytes` (its file offset
    /// when `bytes` is a whole file).
    static func locatedRecords(in bytes: ByteBuffer) -> (records: [(payload: ByteBuffer, offset: Int)], validBytes: Int) {
        var payloads: [(payload: ByteBuffer, offset: Int)] = []
        var buffer = bytes
        var valid = 0
        while buffer.readableBytes >= headerSize {
            let length = Int(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self)!)
            let crc = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)!
            guard length > 0, buffer.readableBytes - headerSize >= length,
                let payload = buffer.getSlice(at: buffer.readerIndex + headerSize, length: length)
            else { break }
            let actual = payload.withUnsafeReadableBytes { CRC32.checksum($0) }
            guard actual == crc else { break }
            payloads.append((payload, valid))
            buffer.moveReaderIndex(forwardBy: headerSize + length)
            valid += headerSize + length
        }
        return (payloads, valid)
    }
}

extension LogRecord {
    /// `publish` (1) is the format before arrival times; it is still read, never written.
    private enum Kind: UInt8 { case publish = 1, remove = 2, timedPublish = 3 }

    func encode(into buffer: inout ByteBuffer) {
        RecordFraming.append(to: &buffer) { buffer in
            switch self {
            case .publish(let message):
                buffer.writeInteger(Kind.timedPublish.rawValue)
                buffer.writeInteger(message.id)
                buffer.writeInteger(message.arrival)
                buffer.writeInteger(UInt16(truncatingIfNeeded: message.queues.count))
                for queue in message.queues { buffer.writeInteger(queue) }
                buffer.writeStoreString(message.exchange)
                buffer.writeStoreString(message.routingKey)
                // Properties came off the wire, so they encode again (a failure would be our bug).
                let lengthIndex = buffer.writerIndex
                buffer.writeInteger(0 as UInt32)
                try? message.properties.encode(into: &buffer)
                buffer.setInteger(UInt32(truncatingIfNeeded: buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
                var body = message.body
                buffer.writeInteger(UInt32(truncatingIfNeeded: body.readableBytes))
                buffer.writeBuffer(&body)
            case .remove(let id, let queue):
                buffer.writeInteger(Kind.remove.rawValue)
                buffer.writeInteger(id)
                buffer.writeInteger(queue)
            }
        }
    }

    /// Decodes one payload; nil if it is not a well-formed record.
    init?(payload: ByteBuffer) {
        var buffer = payload
        guard let raw = buffer.readInteger(as: UInt8.self), let kind = Kind(rawValue: raw) else { return nil }
        switch kind {
        case .publish, .timedPublish:
            guard let id = buffer.readInteger(as: UInt64.self) else { return nil }
            var arrival: Int64 = 0
            if kind == .timedPublish {
                guard let time = buffer.readInteger(as: Int64.self) else { return nil }
                arrival = time
            }
            guard let count = buffer.readInteger(as: UInt16.self) else { return nil }
            var queues: [UInt64] = []
            for _ in 0..<count {
                guard let queue = buffer.readInteger(as: UInt64.self) else { return nil }
                queues.append(queue)
            }
            guard let exchange = buffer.readStoreString(), let routingKey = buffer.readStoreString(),
                let propertiesLength = buffer.readInteger(as: UInt32.self),
                var propertyBytes = buffer.readSlice(length: Int(propertiesLength)),
                let properties = try? BasicProperties(from: &propertyBytes),
                let bodyLength = buffer.readInteger(as: UInt32.self),
                let body = buffer.readSlice(length: Int(bodyLength))
            else { return nil }
            self = .publish(StoredMessage(
                id: id, queues: queues, exchange: exchange, routingKey: routingKey, properties: properties, body: body, arrival: arrival
            ))
        case .remove:
            guard let id = buffer.readInteger(as: UInt64.self), let queue = buffer.readInteger(as: UInt64.self) else { return nil }
            self = .remove(id: id, queue: queue)
        }
    }
}

extension MetaRecord {
    private enum Kind: UInt8 { case exchange = 1, exchangeDeleted, queue, queueDeleted, binding, unbinding }

    func encode(into buffer: inout ByteBuffer) {
        RecordFraming.append(to: &buffer) { buffer in
            switch self {
            case .exchange(let exchange):
                buffer.writeInteger(Kind.exchange.rawValue)
                buffer.writeStoreString(exchange.vhost)
                buffer.writeStoreString(exchange.name)
                buffer.writeStoreString(exchange.type)
                buffer.writeInteger(UInt8(exchange.autoDelete ? 1 : 0))
                buffer.writeInteger(UInt8(exchange.isInternal ? 1 : 0))
                buffer.writeStoreTable(exchange.arguments)
            case .exchangeDeleted(let vhost, let name):
                buffer.writeInteger(Kind.exchangeDeleted.rawValue)
                buffer.writeStoreString(vhost)
                buffer.writeStoreString(name)
            case .queue(let queue):
                buffer.writeInteger(Kind.queue.rawValue)
                buffer.writeStoreString(queue.vhost)
                buffer.writeStoreString(queue.name)
                buffer.writeInteger(queue.id)
                buffer.writeInteger(UInt8(queue.autoDelete ? 1 : 0))
                buffer.writeStoreTable(queue.arguments)
            case .queueDeleted(let vhost, let name):
                buffer.writeInteger(Kind.queueDeleted.rawValue)
                buffer.writeStoreString(vhost)
                buffer.writeStoreString(name)
            case .binding(let binding), .unbinding(let binding):
                if case .binding = self {
                    buffer.writeInteger(Kind.binding.rawValue)
                } else {
                    buffer.writeInteger(Kind.unbinding.rawValue)
                }
                buffer.writeStoreString(binding.vhost)
                buffer.writeStoreString(binding.source)
                buffer.writeInteger(UInt8(binding.destinationIsQueue ? 1 : 0))
                buffer.writeStoreString(binding.destination)
                buffer.writeStoreString(binding.key)
                buffer.writeStoreTable(binding.arguments)
            }
        }
    }

    init?(payload: ByteBuffer) {
        var buffer = payload
        guard let raw = buffer.readInteger(as: UInt8.self), let kind = Kind(rawValue: raw) else { return nil }
        switch kind {
        case .exchange:
            guard let vhost = buffer.readStoreString(), let name = buffer.readStoreString(), let type = buffer.readStoreString(),
                let autoDelete = buffer.readInteger(as: UInt8.self), let isInternal = buffer.readInteger(as: UInt8.self),
                let arguments = buffer.readStoreTable()
            else { return nil }
            self = .exchange(StoredExchange(vhost: vhost, name: name, type: type, autoDelete: autoDelete != 0, isInternal: isInternal != 0, arguments: arguments))
        case .exchangeDeleted:
            guard let vhost = buffer.readStoreString(), let name = buffer.readStoreString() else { return nil }
            self = .exchangeDeleted(vhost: vhost, name: name)
        case .queue:
            guard let vhost = buffer.readStoreString(), let name = buffer.readStoreString(), let id = buffer.readInteger(as: UInt64.self),
                let autoDelete = buffer.readInteger(as: UInt8.self), let arguments = buffer.readStoreTable()
            else { return nil }
            self = .queue(StoredQueue(vhost: vhost, name: name, id: id, autoDelete: autoDelete != 0, arguments: arguments))
        case .queueDeleted:
            guard let vhost = buffer.readStoreString(), let name = buffer.readStoreString() else { return nil }
            self = .queueDeleted(vhost: vhost, name: name)
        case .binding, .unbinding:
            guard let vhost = buffer.readStoreString(), let source = buffer.readStoreString(),
                let isQueue = buffer.readInteger(as: UInt8.self), let destination = buffer.readStoreString(),
                let key = buffer.readStoreString(), let arguments = buffer.readStoreTable()
            else { return nil }
            let binding = StoredBinding(vhost: vhost, source: source, destinationIsQueue: isQueue != 0, destination: destination, key: key, arguments: arguments)
            self = kind == .binding ? .binding(binding) : .unbinding(binding)
        }
    }
}

extension ByteBuffer {
    /// A UTF-8 string with a 32-bit length (names and keys can exceed a short string's 255).
    fileprivate mutating func writeStoreString(_ value: String) {
        self.writeInteger(UInt32(truncatingIfNeeded: value.utf8.count))
        self.writeString(value)
    }

    fileprivate mutating func readStoreString() -> String? {
        guard let length = self.readInteger(as: UInt32.self), Int(length) <= self.readableBytes else { return nil }
        return self.readString(length: Int(length))
    }

    fileprivate mutating func writeStoreTable(_ table: FieldTable) {
        // A table that arrived on the wire encodes again; an empty one stands in otherwise.
        let start = self.writerIndex
        do { try self.writeAMQPFieldTable(table) } catch {
            self.moveWriterIndex(to: start)
            self.writeInteger(0 as UInt32)
        }
    }

    fileprivate mutating func readStoreTable() -> FieldTable? {
        try? self.readAMQPFieldTable()
    }
}

/// CRC-32 (IEEE), table driven: detects records torn by a crash or damaged on disk.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = (value & 1) != 0 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1 }
        return value
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
