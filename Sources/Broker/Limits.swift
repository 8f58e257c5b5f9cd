/// Limits that protect the broker from too many or too large things, each refused with
/// the reply code RabbitMQ uses (see docs/broker.md, "Limits"). Channels per connection
/// and the frame size are `BrokerConfiguration.channelMax` / `frameMax`, negotiated in
/// connection.tune.
public struct BrokerLimits: Sendable, Hashable {
    /// Open connections at once; one more is refused at connection.open with 530
    /// NOT_ALLOWED (0: no limit).
    public var maxConnections: Int
    /// Largest message body accepted; a larger publish closes its channel with 406
    /// PRECONDITION_FAILED, as RabbitMQ's `max_message_size` does (0: no limit).
    public var maxMessageSize: Int

    /// RabbitMQ 3.10's default `max_message_size` is 128 MiB.
    public static let defaultMaxMessageSize = 128 << 20

    public init(maxConnections: Int = 0, maxMessageSize: Int = BrokerLimits.defaultMaxMessageSize) {
        self.maxConnections = maxConnections
        self.maxMessageSize = maxMessageSize
    }
}
