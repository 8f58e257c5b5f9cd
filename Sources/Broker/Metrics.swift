import NIOCore
import Prometheus

/// Counters the broker keeps as it works, and the Prometheus text of `/metrics`
/// (see docs/broker.md, "Metrics"). Counters are bumped on the broker loop; gauges
/// (queue depths, connections, memory, disk) are read from the broker state when scraped.
final class BrokerStatistics {
    let registry = PrometheusCollectorRegistry()
    let published: Counter
    let delivered: Counter
    let confirmed: Counter
    let connectionsOpened: Counter
    let confirmLatency: DurationHistogram

    init() {
        self.published = self.registry.makeCounter(descriptor: Self.name(
            "messages_published", "total", "Messages received from publishers (content headers read)."))
        self.delivered = self.registry.makeCounter(descriptor: Self.name(
            "messages_delivered", "total", "Messages sent to consumers (basic.deliver and basic.get-ok)."))
        self.confirmed = self.registry.makeCounter(descriptor: Self.name(
            "confirms", "total", "Publisher confirms sent (basic.ack or basic.nack frames, each may cover many messages)."))
        self.connectionsOpened = self.registry.makeCounter(descriptor: Self.name(
            "connections_opened", "total", "AMQP connections that completed connection.open."))
        self.confirmLatency = self.registry.makeDurationHistogram(
            descriptor: Self.name("confirm_latency", "seconds", "From the first unconfirmed publish on a channel to the confirm that covers it."),
            buckets: [.microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
                      .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5)]
        )
    }

    /// `conductor_<name>_<unit>` (no unit suffix when `unit` is empty).
    static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "conductor", metricName: name, unitName: unit, helpText: help)
    }

    /// The full exposition: the counters, then gauges read from `core` now.
    func render(core: BrokerCore) -> [UInt8] {
        var output: [UInt8] = []
        self.registry.emit(into: &output)
        let gauges = PrometheusCollectorRegistry()
        func gauge(_ name: String, _ help: String, _ value: Int?, _ labels: [(String, String)] = []) {
            guard let value else { return }
            let unit = name.hasSuffix("_bytes") ? "bytes" : ""
            let base = String(name.dropFirst("conductor_".count).dropLast(unit.isEmpty ? 0 : "_bytes".count))
            gauges.makeGauge(descriptor: Self.name(base, unit, help), labels: labels).set(Double(value))
        }
        let connections = Array(core.connections.values)
        gauge("conductor_connections", "Open AMQP connections.", connections.lazy.filter(\.isOpen).count)
        gauge("conductor_channels", "Open channels over all connections.", connections.reduce(0) { $0 + $1.openChannels.count })
        gauge("conductor_blocked_connections", "Connections blocked by memory or disk pressure.", core.flow.blockedConnectionCount)
        gauge("conductor_held_body_bytes", "Message body bytes held (ready and unacknowledged).", core.flow.heldBytes)
        gauge("conductor_memory_used_bytes", "Resident memory of the broker process (last sample).", core.flow.memoryUsed)
        gauge("conductor_memory_limit_bytes", "Memory high watermark.", core.flow.memoryLimit)
        gauge("conductor_disk_free_bytes", "Free space on the data directory's file system (last sample).", core.flow.diskFree)
        gauge("conductor_disk_free_limit_bytes", "Disk free limit.", core.flow.diskFreeLimit)
        for alarm in FlowController.Alarm.allCases {
            gauge("conductor_resource_alarm", "1 while the resource alarm is on.", core.flow.alarms.contains(alarm) ? 1 : 0,
                  [("resource", alarm == .memory ? "memory" : "disk")])
        }
        var queueCount = 0
        for vhost in core.vhosts.values {
            for queue in vhost.queues.values {
                queueCount += 1
                let labels = [("vhost", vhost.name), ("queue", queue.name)]
                gauge("conductor_queue_messages_ready", "Messages ready for delivery.", queue.messages.count, labels)
                gauge("conductor_queue_messages_unacked", "Messages delivered and not yet acknowledged.", queue.unackedCount, labels)
                gauge("conductor_queue_consumers", "Consumers of the queue.", queue.consumers.count, labels)
            }
        }
        gauge("conductor_queues", "Queues over all virtual hosts.", queueCount)
        gauges.emit(into: &output)
        return output
    }
}

extension BrokerQueue {
    /// Deliveries to consumers not yet acknowledged (basic.get deliveries are not counted).
    var unackedCount: Int { self.consumers.reduce(0) { $0 + $1.unackedCount } }
}
