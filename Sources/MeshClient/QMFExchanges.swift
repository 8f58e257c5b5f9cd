import AMQPClient
import Mesh

/// The two qmf exchanges (docs/protocol.md, "Exchanges"), made sure of before a client
/// uses them: checked with a passive declare when they are there, since a confined login
/// (an agent's own, the recipe login) may not declare exchanges; declared when missing, by
/// a login that may. Returns the channel to go on with (a failed passive declare closes
/// the one it was sent on).
enum QMFExchanges {
    static func ensure(_ exchanges: [(name: String, type: String)], on connection: AMQPConnection) async throws -> AMQPChannel {
        var channel = try await connection.openChannel()
        for exchange in exchanges {
            do {
                try await channel.exchangeDeclare(name: exchange.name, type: exchange.type, passive: true, durable: true)
            } catch let error as AMQPError where error.replyCode == 404 {
                channel = try await connection.openChannel()
                try await channel.exchangeDeclare(name: exchange.name, type: exchange.type, durable: true)
            }
        }
        return channel
    }

    static let both: [(name: String, type: String)] = [(QMF.topicExchange, "topic"), (QMF.directExchange, "direct")]
}
