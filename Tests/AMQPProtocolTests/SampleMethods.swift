import AMQPProtocol

/// One value of every method of the extended spec, each field away from its default, so a
/// field that is dropped or swapped on the wire shows up in a round trip.
enum SampleMethods {
    static let table: FieldTable = ["x-max-length": .int32(10), "nested": .table(["flag": .bool(true)])]

    static let all: [AMQP.Method] = [
        AMQP.Connection.Start(
            versionMajor: 0, versionMinor: 9,
            serverProperties: ["product": .string("conductor"), "capabilities": .table(["publisher_confirms": .bool(true)])],
            mechanisms: Array("PLAIN AMQPLAIN".utf8), locales: Array("en_US".utf8)
        ).asMethod,
        AMQP.Connection.StartOk(
            clientProperties: ["product": .string("test")], mechanism: "PLAIN",
            response: [0] + Array("guest".utf8) + [0] + Array("guest".utf8), locale: "en_US"
        ).asMethod,
        AMQP.Connection.Secure(challenge: [1, 2, 3]).asMethod,
        AMQP.Connection.SecureOk(response: [4, 5, 6]).asMethod,
        AMQP.Connection.Tune(channelMax: 2047, frameMax: 131_072, heartbeat: 60).asMethod,
        AMQP.Connection.TuneOk(channelMax: 1024, frameMax: 65_536, heartbeat: 30).asMethod,
        AMQP.Connection.Open(virtualHost: "/prod").asMethod,
        AMQP.Connection.OpenOk().asMethod,
        AMQP.Connection.Close(replyCode: 320, replyText: "CONNECTION_FORCED", classId: 60, methodId: 40).asMethod,
        AMQP.Connection.CloseOk().asMethod,
        AMQP.Connection.Blocked(reason: "low on memory").asMethod,
        AMQP.Connection.Unblocked().asMethod,
        AMQP.Connection.UpdateSecret(newSecret: Array("token".utf8), reason: "refresh").asMethod,
        AMQP.Connection.UpdateSecretOk().asMethod,
        AMQP.Channel.Open().asMethod,
        AMQP.Channel.OpenOk().asMethod,
        AMQP.Channel.Flow(active: true).asMethod,
        AMQP.Channel.FlowOk(active: true).asMethod,
        AMQP.Channel.Close(replyCode: 404, replyText: "NOT_FOUND - no queue 'q'", classId: 50, methodId: 10).asMethod,
        AMQP.Channel.CloseOk().asMethod,
        AMQP.Exchange.Declare(
            exchange: "logs", type: "topic", passive: true, durable: true, autoDelete: true, internal: true,
            noWait: true, arguments: table
        ).asMethod,
        AMQP.Exchange.DeclareOk().asMethod,
        AMQP.Exchange.Delete(exchange: "logs", ifUnused: true, noWait: true).asMethod,
        AMQP.Exchange.DeleteOk().asMethod,
        AMQP.Exchange.Bind(destination: "d", source: "s", routingKey: "a.*", noWait: true, arguments: table).asMethod,
        AMQP.Exchange.BindOk().asMethod,
        AMQP.Exchange.Unbind(destination: "d", source: "s", routingKey: "a.#", noWait: true, arguments: table).asMethod,
        AMQP.Exchange.UnbindOk().asMethod,
        AMQP.Queue.Declare(
            queue: "jobs", passive: true, durable: true, exclusive: true, autoDelete: true, noWait: true,
            arguments: table
        ).asMethod,
        AMQP.Queue.DeclareOk(queue: "amq.gen-1", messageCount: 7, consumerCount: 3).asMethod,
        AMQP.Queue.Bind(queue: "jobs", exchange: "logs", routingKey: "k", noWait: true, arguments: table).asMethod,
        AMQP.Queue.BindOk().asMethod,
        AMQP.Queue.Unbind(queue: "jobs", exchange: "logs", routingKey: "k", arguments: table).asMethod,
        AMQP.Queue.UnbindOk().asMethod,
        AMQP.Queue.Purge(queue: "jobs", noWait: true).asMethod,
        AMQP.Queue.PurgeOk(messageCount: 42).asMethod,
        AMQP.Queue.Delete(queue: "jobs", ifUnused: true, ifEmpty: true, noWait: true).asMethod,
        AMQP.Queue.DeleteOk(messageCount: 5).asMethod,
        AMQP.Basic.Qos(prefetchSize: 65_536, prefetchCount: 1000, global: true).asMethod,
        AMQP.Basic.QosOk().asMethod,
        AMQP.Basic.Consume(
            queue: "jobs", consumerTag: "ctag", noLocal: true, noAck: true, exclusive: true, noWait: true,
            arguments: table
        ).asMethod,
        AMQP.Basic.ConsumeOk(consumerTag: "ctag").asMethod,
        AMQP.Basic.Cancel(consumerTag: "ctag", noWait: true).asMethod,
        AMQP.Basic.CancelOk(consumerTag: "ctag").asMethod,
        AMQP.Basic.Publish(exchange: "logs", routingKey: "a.b", mandatory: true, immediate: true).asMethod,
        AMQP.Basic.Return(replyCode: 312, replyText: "NO_ROUTE", exchange: "logs", routingKey: "a.b").asMethod,
        AMQP.Basic.Deliver(
            consumerTag: "ctag", deliveryTag: 0x1_0000_0001, redelivered: true, exchange: "logs", routingKey: "a.b"
        ).asMethod,
        AMQP.Basic.Get(queue: "jobs", noAck: true).asMethod,
        AMQP.Basic.GetOk(deliveryTag: 9, redelivered: true, exchange: "logs", routingKey: "a.b", messageCount: 11).asMethod,
        AMQP.Basic.GetEmpty().asMethod,
        AMQP.Basic.Ack(deliveryTag: UInt64.max, multiple: true).asMethod,
        AMQP.Basic.Reject(deliveryTag: 17, requeue: true).asMethod,
        AMQP.Basic.RecoverAsync(requeue: true).asMethod,
        AMQP.Basic.Recover(requeue: true).asMethod,
        AMQP.Basic.RecoverOk().asMethod,
        AMQP.Basic.Nack(deliveryTag: 18, multiple: true, requeue: true).asMethod,
        AMQP.Tx.Select().asMethod,
        AMQP.Tx.SelectOk().asMethod,
        AMQP.Tx.Commit().asMethod,
        AMQP.Tx.CommitOk().asMethod,
        AMQP.Tx.Rollback().asMethod,
        AMQP.Tx.RollbackOk().asMethod,
        AMQP.Confirm.Select(nowait: true).asMethod,
        AMQP.Confirm.SelectOk().asMethod,
    ]
}
