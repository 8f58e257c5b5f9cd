import AMQPClient
import AMQPProtocol
import Foundation
import Testing

/// A `tx.commit-ok` is a promise like a publisher confirm: the committed persistent
/// messages survive a kill -9 that comes right after it. The built `conductor broker` is
/// killed the moment each commit-ok arrives, ten times; every committed message is there.
@Suite("Persistence of transactions through kill -9", .timeLimit(.minutes(2)))
struct PersistenceTransactionTests {
    @Test func aCommittedTransactionSurvivesAKillRightAfterCommitOk() async throws {
        let directory = NSTemporaryDirectory() + "conductor-tx-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let perRound = 200
        var committed = 0
        for round in 0..<10 {
            let broker = try await PersistenceCrashTests.BrokerChild.start(directory: directory)
            var configuration = try AMQPConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F")
            configuration.recovery = .disabled
            let connection = try await AMQPConnection.connect(configuration)
            let channel = try await connection.openChannel()
            let declared = try await channel.queueDeclare(name: "tx", durable: true)
            #expect(Int(declared.messageCount) == committed, "round \(round): committed messages lost in the last kill")
            try await channel.txSelect()
            for index in 0..<perRound {
                _ = try channel.publish("\(round).\(index)", routingKey: "tx", properties: BasicProperties(deliveryMode: 2))
            }
            try await channel.txCommit()
            await broker.kill()
            committed += perRound
        }
        let broker = try await PersistenceCrashTests.BrokerChild.start(directory: directory)
        var configuration = try AMQPConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F")
        configuration.recovery = .disabled
        let connection = try await AMQPConnection.connect(configuration)
        let channel = try await connection.openChannel()
        #expect(Int(try await channel.queueDeclare(name: "tx", durable: true).messageCount) == committed)
        await broker.kill()
    }
}
