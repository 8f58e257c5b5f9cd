#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import NIOCore

/// Publisher flow control, in the spirit of RabbitMQ's credit flow and resource alarms:
/// when the broker's total of held body bytes passes its high watermark, or the memory or
/// disk alarm is on (see `Watermarks`), connections that publish are no longer read
/// (their `read` events are held by `BrokerConnection`) and, if they announced the
/// `connection.blocked` capability, get `connection.blocked`. When the held bytes are down
/// to the low watermark and no alarm is on, they are read again and get
/// `connection.unblocked`. Queue backlogs block their publishers the same way, without
/// the notification (see `BrokerQueue.published(by:)`), as RabbitMQ's credit flow does.
///
/// A connection that consumes (has consumers or unacknowledged deliveries) is never
/// blocked: its acks may be what drains the queue. Lives on the broker loop.
final class FlowController {
    /// A resource alarm; the raw value is the reason sent in connection.blocked
    /// (RabbitMQ's words).
    enum Alarm: String, CaseIterable, Sendable {
        case memory = "low on memory"
        case disk = "low on disk"
    }

    let limits: BrokerConfiguration.FlowLimits
    /// Body bytes of ready and unacknowledged messages, summed over queues.
    private(set) var heldBytes = 0
    /// Set when the held bytes pass `limits.maxBytes`, cleared at `limits.resumeBytes`.
    private var overHeldBytes = false
    private(set) var alarms: Set<Alarm> = []
    private var blockedPublishers: [BrokerConnection] = []
    /// The last samples of the resource monitor (for metrics and the admin API).
    private(set) var memoryUsed: Int?
    private(set) var memoryLimit: Int?
    private(set) var diskFree: Int?
    private(set) var diskFreeLimit: Int?
    private var monitorTask: Scheduled<Void>?
    private var isMonitoring = false

    init(limits: BrokerConfiguration.FlowLimits) {
        self.limits = limits
    }

    var blockerID: ObjectIdentifier { ObjectIdentifier(self) }

    /// Whether publishers are being blocked now.
    var isBlocking: Bool { self.overHeldBytes || !self.alarms.isEmpty }

    /// Connections blocked by memory or disk pressure now.
    var blockedConnectionCount: Int { self.blockedPublishers.count }

    @inline(__always)
    func add(_ bytes: Int) {
        self.heldBytes &+= bytes
    }

    @inline(__always)
    func remove(_ bytes: Int) {
        self.heldBytes &-= bytes
        if self.overHeldBytes, self.heldBytes <= self.limits.resumeBytes {
            self.overHeldBytes = false
            if self.alarms.isEmpty { self.resume() }
        }
    }

    /// Called after a publish: past the memory high watermark, or with an alarm on, the
    /// publisher stops being read and is told so.
    @inline(__always)
    func published(by connection: BrokerConnection) {
        if self.limits.maxBytes > 0, self.heldBytes > self.limits.maxBytes { self.overHeldBytes = true }
        guard self.isBlocking else { return }
        if connection.blockReading(by: self.blockerID) {
            self.blockedPublishers.append(connection)
            connection.notifyBlocked(reason: self.reason)
        }
    }

    private var reason: String {
        if self.alarms.contains(.disk), !self.alarms.contains(.memory), !self.overHeldBytes { return Alarm.disk.rawValue }
        return Alarm.memory.rawValue
    }

    /// Turns an alarm on or off; publishers resume when none is left and the held bytes allow.
    func setAlarm(_ alarm: Alarm, _ on: Bool) {
        if on {
            self.alarms.insert(alarm)
        } else if self.alarms.remove(alarm) != nil, !self.isBlocking {
            self.resume()
        }
    }

    private func resume() {
        let connections = self.blockedPublishers
        self.blockedPublishers.removeAll()
        for connection in connections {
            connection.unblockReading(by: self.blockerID)
            connection.notifyUnblocked()
        }
    }

    // MARK: - Resource monitor

    /// Samples memory and disk every `watermarks.checkInterval` on `eventLoop` and turns
    /// the alarms on and off. RabbitMQ has no hysteresis here either: an alarm clears as
    /// soon as the sample is back under (memory) or over (disk) its limit.
    /// `dataDirectory`: the disk watched when `watermarks.diskPath` is nil; with neither,
    /// there is no disk alarm (a broker that writes nothing does not stop for a full disk).
    func startMonitoring(_ watermarks: Watermarks, dataDirectory: String?, on eventLoop: any EventLoop, logger: Logger) {
        eventLoop.preconditionInEventLoop()
        guard !self.isMonitoring else { return }
        let probe = watermarks.probe
        let total = probe.totalMemory()
        self.memoryLimit = total.flatMap { watermarks.memoryHighWatermark.bytes(totalMemory: $0) }
        let diskPath = watermarks.diskPath ?? dataDirectory
        if diskPath != nil {
            self.diskFreeLimit = total.flatMap { watermarks.diskFreeLimit.bytes(totalMemory: $0) }
                ?? watermarks.diskFreeLimit.absoluteBytes
        }
        let sample = {
            self.memoryUsed = probe.memoryUsed()
            self.diskFree = diskPath.flatMap { probe.diskFree($0) }
            self.update(.memory, over: self.memoryLimit.flatMap { limit in self.memoryUsed.map { limit > 0 && $0 > limit } }, logger)
            self.update(.disk, over: self.diskFreeLimit.flatMap { limit in self.diskFree.map { limit > 0 && $0 < limit } }, logger)
        }
        sample()
        let interval = TimeAmount.milliseconds(Int64(Swift.max(10, watermarks.checkIntervalMilliseconds)))
        self.isMonitoring = true
        self.scheduleSample(sample, every: interval, on: eventLoop)
    }

    private func scheduleSample(_ sample: @escaping () -> Void, every interval: TimeAmount, on eventLoop: any EventLoop) {
        guard self.isMonitoring else { return }
        self.monitorTask = eventLoop.assumeIsolated().scheduleTask(in: interval) {
            sample()
            self.scheduleSample(sample, every: interval, on: eventLoop)
        }
    }

    func stopMonitoring() {
        self.isMonitoring = false
        self.monitorTask?.cancel()
        self.monitorTask = nil
    }

    private func update(_ alarm: Alarm, over: Bool?, _ logger: Logger) {
        guard let over, over != self.alarms.contains(alarm) else { return }
        if over {
            logger.warning("resource alarm set: publishers are blocked", metadata: [
                "alarm": "\(alarm.rawValue)", "memory_used": "\(self.memoryUsed ?? -1)", "memory_limit": "\(self.memoryLimit ?? -1)",
                "disk_free": "\(self.diskFree ?? -1)", "disk_free_limit": "\(self.diskFreeLimit ?? -1)",
            ])
        } else {
            logger.notice("resource alarm cleared", metadata: ["alarm": "\(alarm.rawValue)"])
        }
        self.setAlarm(alarm, over)
    }
}

/// An amount of memory or disk, either relative to the machine's physical memory (like
/// RabbitMQ's `vm_memory_high_watermark.relative` and `disk_free_limit.relative`) or in
/// bytes (their `.absolute` forms).
public enum ResourceAmount: Sendable, Hashable, CustomStringConvertible {
    case relative(Double)
    case absolute(Int)

    /// Reads "0.4" (a plain number: relative to physical memory) or a size with a unit:
    /// "50MB", "512MiB", "2GB", "1048576B" (kB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
    public init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let fraction = Double(text) {
            guard fraction >= 0, fraction <= 100, fraction.isFinite else { return nil }
            self = .relative(fraction)
            return
        }
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("kB", 1_000), ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Double(number), value >= 0, value.isFinite, value * Double(factor) < Double(Int.max) else { return nil }
            self = .absolute(Int(value * Double(factor)))
            return
        }
        return nil
    }

    public func bytes(totalMemory: Int) -> Int {
        switch self {
        case .relative(let fraction): return Int(Double(totalMemory) * fraction)
        case .absolute(let bytes): return bytes
        }
    }

    var absoluteBytes: Int? {
        if case .absolute(let bytes) = self { return bytes }
        return nil
    }

    public var description: String {
        switch self {
        case .relative(let fraction): return "\(fraction) of physical memory"
        case .absolute(let bytes): return "\(bytes) bytes"
        }
    }
}

/// The memory and disk alarms (RabbitMQ's resource alarms): while the broker's resident
/// memory is above `memoryHighWatermark`, or the free space of the file system holding
/// `diskPath` (by default the data directory; no disk alarm without one) is below
/// `diskFreeLimit`, publishing connections are blocked.
public struct Watermarks: Sendable {
    /// RabbitMQ's default: 0.4 of physical memory.
    public var memoryHighWatermark: ResourceAmount
    /// RabbitMQ's default: 50 MB.
    public var diskFreeLimit: ResourceAmount
    /// A directory on the file system to watch; nil: the broker's data directory, and no
    /// disk alarm for a broker that keeps everything in memory.
    public var diskPath: String?
    public var checkIntervalMilliseconds: Int
    /// Where the samples come from; tests substitute their own.
    public var probe: ResourceProbe

    public init(
        memoryHighWatermark: ResourceAmount = .relative(0.4),
        diskFreeLimit: ResourceAmount = .absolute(50_000_000),
        diskPath: String? = nil,
        checkIntervalMilliseconds: Int = 1000,
        probe: ResourceProbe = .system
    ) {
        self.memoryHighWatermark = memoryHighWatermark
        self.diskFreeLimit = diskFreeLimit
        self.diskPath = diskPath
        self.checkIntervalMilliseconds = checkIntervalMilliseconds
        self.probe = probe
    }
}

/// Reads the process's memory use, physical memory and free disk space.
public struct ResourceProbe: Sendable {
    public var memoryUsed: @Sendable () -> Int?
    public var totalMemory: @Sendable () -> Int?
    public var diskFree: @Sendable (_ path: String) -> Int?

    public init(
        memoryUsed: @escaping @Sendable () -> Int?,
        totalMemory: @escaping @Sendable () -> Int?,
        diskFree: @escaping @Sendable (_ path: String) -> Int?
    ) {
        self.memoryUsed = memoryUsed
        self.totalMemory = totalMemory
        self.diskFree = diskFree
    }

    /// Resident set size from /proc/self/statm, physical memory from sysconf, free space
    /// (available to unprivileged users) from statvfs.
    public static let system = ResourceProbe(
        memoryUsed: {
            // "size resident shared ..." in pages.
            guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
            let fields = statm.split(separator: " ")
            guard fields.count > 1, let resident = Int(fields[1]) else { return nil }
            return resident * sysconf(Int32(_SC_PAGESIZE))
        },
        totalMemory: {
            let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
            guard pages > 0, size > 0 else { return nil }
            return pages * size
        },
        diskFree: { path in
            // A data directory not made yet: its nearest existing parent's file system.
            var candidate = path
            for _ in 0..<64 {
                var stats = statvfs()
                if statvfs(candidate, &stats) == 0 { return Int(stats.f_bavail) * Int(stats.f_frsize) }
                guard errno == ENOENT, candidate.hasPrefix("/"), candidate != "/" else { return nil }
                candidate = (candidate as NSString).deletingLastPathComponent
            }
            return nil
        }
    )
}

