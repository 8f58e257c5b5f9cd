import NIOCore

/// Namespace for the AMQP 0-9-1 classes and methods. The classes (`AMQP.Connection`,
/// `AMQP.Basic`, …) and their method structs are generated from the spec XML by
/// `scripts/generate-methods.py`; see `Generated/`.
public enum AMQP {
    /// The protocol header a client sends first: `AMQP` 0 0 9 1.
    public static let protocolHeader: [UInt8] = [0x41, 0x4D, 0x51, 0x50, 0, 0, 9, 1]

    /// Smallest `frame_max` a peer may negotiate; frames up to this size are always accepted.
    public static let frameMinSize: UInt32 = 4096

    /// Bytes a frame adds around its payload: type (1), channel (2), size (4), frame-end (1).
    public static let frameOverhead: Int = 8
}

/// What every generated method struct provides.
public protocol MethodPayload: Sendable, Hashable {
    static var classID: UInt16 { get }
    static var methodID: UInt16 { get }
    /// The spec's name, such as `basic.publish`.
    static var name: String { get }
    static var isSynchronous: Bool { get }
    static var hasContent: Bool { get }
    init(arguments buffer: inout ByteBuffer) throws(ProtocolError)
    func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError)
    var asMethod: AMQP.Method { get }
}

extension AMQP {
    /// The protocol extensions Conductor implements in both roles (RabbitMQ's names), as
    /// announced in the `capabilities` table of server and client properties.
    public static let capabilities: FieldTable = [
        "publisher_confirms": .bool(true),
        "exchange_exchange_bindings": .bool(true),
        "basic.nack": .bool(true),
        "consumer_cancel_notify": .bool(true),
        "connection.blocked": .bool(true),
        "authentication_failure_close": .bool(true),
        "per_consumer_qos": .bool(true),
    ]
}
