import AMQPClient
import Logging
import NIOCore
import Testing

@testable import Broker

/// `/metrics` in Prometheus text format, scraped over loopback after real traffic.
@Suite(.timeLimit(.minutes(1)))
struct MetricsTests {
    /// The value of the sample line `name` (with its labels, as printed), if present.
    static func sample(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    @Test func metricsReflectTraffic() async throws {
        var configuration = BrokerConfiguration(port: 0)
        configuration.admin = AdminConfiguration(port: 0)
        configuration.watermarks.checkIntervalMilliseconds = 50
        configuration.watermarks.diskPath = "/"
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        let port = try await server.start()
        let adminPort = try #require(server.adminPort)
        // /metrics needs no credentials.
        let scraper = BrokerAdminClient(port: adminPort, username: "nobody", password: "-")
        do {
            let connection = try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F")
            let channel = try await connection.openChannel()
            _ = try await channel.queueDeclare(name: "metered")
            try await channel.confirmSelect()
            for _ in 0..<10 { try await channel.publishConfirmed("m", routingKey: "metered") }
            for _ in 0..<4 { _ = try await channel.get(queue: "metered", noAck: true) }

            let response = try await scraper.request(.GET, "/metrics", body: nil)
            #expect(response.status == 200)
            let text = response.text
            #expect(Self.sample(text, "conductor_messages_published_total") == 10)
            #expect(Self.sample(text, "conductor_messages_delivered_total") == 4)
            #expect(Self.sample(text, "conductor_confirms_total") == 10)
            #expect(Self.sample(text, "conductor_confirm_latency_seconds_count") == 10)
            #expect(Self.sample(text, "conductor_connections") == 1)
            #expect(Self.sample(text, "conductor_channels") == 1)
            #expect(Self.sample(text, #"conductor_queue_messages_ready{vhost="/",queue="metered"}"#) == 6)
            #expect(Self.sample(text, #"conductor_queue_consumers{vhost="/",queue="metered"}"#) == 0)
            #expect((Self.sample(text, "conductor_memory_used_bytes") ?? 0) > 1_000_000)
            #expect((Self.sample(text, "conductor_memory_limit_bytes") ?? 0) > 0)
            #expect((Self.sample(text, "conductor_disk_free_bytes") ?? -1) >= 0)
            #expect(Self.sample(text, "conductor_disk_free_limit_bytes") == 50_000_000)
            #expect(Self.sample(text, #"conductor_resource_alarm{resource="memory"}"#) == 0)
            #expect(text.contains("# TYPE conductor_messages_published_total counter"))
            #expect(text.contains("# HELP conductor_queue_messages_ready"))
            try await connection.close()

            // Gauges follow the state: the connection is gone.
            var connections: Double?
            for _ in 0..<100 {
                connections = Self.sample(try await scraper.request(.GET, "/metrics", body: nil).text, "conductor_connections")
                if connections == 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(connections == 0)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }
}
