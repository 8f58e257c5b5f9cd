import Foundation
import Mesh

/// Collects the built-in `host` facts from files under `sources.root` and a few system
/// calls. Never spawns a process; a file that is missing or unreadable just leaves its
/// facts out (or at their documented default), so collection cannot fail.
public struct HostFactCollector: Sendable {
    public var sources: FactSources

    public init(sources: FactSources = FactSources()) {
        self.sources = sources
    }

    /// Properties and statistics together.
    public func collectAll() -> [String: MeshValue] {
        collectProperties().merging(collectStatistics()) { _, statistic in statistic }
    }

    /// The rarely-changing facts.
    public func collectProperties() -> [String: MeshValue] {
        let system = sources.system
        var facts: [String: MeshValue] = [:]
        let hostname = system.hostname()
        let shortName = String(hostname.prefix(while: { $0 != "." }))
        facts["hostname"] = .string(shortName)
        facts["fqdn"] = .string(Self.fullyQualified(hostname: hostname, canonical: system.canonicalName(hostname)))
        if let uuid = machineID() { facts["uuid"] = .string(uuid) }
        facts["os"] = .string(Self.operatingSystem)

        let release = Self.parseOSRelease(sources.read("etc/os-release") ?? sources.read("usr/lib/os-release") ?? "")
        facts["os_release"] = .map(release.mapValues { .string($0) })
        if let pretty = release["PRETTY_NAME"] ?? release["NAME"] { facts["os_pretty_name"] = .string(pretty) }

        let kernel = sources.read("proc/sys/kernel/osrelease")?.trimmingCharacters(in: .whitespacesAndNewlines)
        facts["kernel"] = .string(kernel.flatMap { $0.isEmpty ? nil : $0 } ?? system.kernelRelease())
        facts["arch"] = .string(system.machine())

        let cpu = Self.parseCPUInfo(sources.read("proc/cpuinfo") ?? "")
        facts["cpu_count"] = .int(Int64(cpu.count > 0 ? cpu.count : max(1, system.onlineProcessors())))
        if let model = cpu.model { facts["cpu_model"] = .string(model) }

        let memory = Self.parseMeminfo(sources.read("proc/meminfo") ?? "")
        if let total = memory["MemTotal"] { facts["memory_total"] = .int(total) }
        if let total = memory["SwapTotal"] { facts["swap_total"] = .int(total) }

        let interfaces = collectInterfaces()
        facts["interfaces"] = .map(interfaces.mapValues(\.meshValue))
        let routeInterface = Self.defaultRouteInterface(sources.read("proc/net/route") ?? "")
        if let primary = Self.primaryAddress(interfaces: interfaces, defaultRouteInterface: routeInterface) {
            facts["ipaddress"] = .string(primary)
        }
        if let address = sources.ipaddressOverride { facts["ipaddress"] = .string(address) }

        facts["sshd"] = SSHDConfig.load(sources.sshdConfigPath, sources: sources).meshValue
        return facts
    }

    /// The fast-changing facts; cheap enough to run every few seconds.
    public func collectStatistics() -> [String: MeshValue] {
        var facts: [String: MeshValue] = [:]
        let memory = Self.parseMeminfo(sources.read("proc/meminfo") ?? "")
        if let free = memory["MemAvailable"] ?? memory["MemFree"] { facts["memory_free"] = .int(free) }
        if let free = memory["SwapFree"] { facts["swap_free"] = .int(free) }
        if let load = Self.parseLoadAverage(sources.read("proc/loadavg") ?? "") {
            facts["load_average_1"] = .double(load.0)
            facts["load_average_5"] = .double(load.1)
            facts["load_average_15"] = .double(load.2)
        }
        if let uptime = Self.parseUptime(sources.read("proc/uptime") ?? "") { facts["uptime"] = .int(uptime) }
        return facts
    }

    // MARK: - Pieces

    static var operatingSystem: String {
        #if os(Linux)
        "linux"
        #elseif os(macOS)
        "darwin"
        #else
        "unknown"
        #endif
    }

    static func fullyQualified(hostname: String, canonical: String?) -> String {
        if hostname.contains(".") { return hostname }
        if let canonical, canonical.contains("."), !canonical.hasPrefix("localhost") { return canonical }
        return hostname
    }

    func machineID() -> String? {
        for file in ["etc/machine-id", "var/lib/dbus/machine-id", "sys/class/dmi/id/product_uuid"] {
            if let text = sources.read(file)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
                return Self.uuidForm(text)
            }
        }
        return nil
    }

    /// machine-id is 32 hex digits; shown in the 8-4-4-4-12 form so it reads as the UUID
    /// the schema says it is (DMI product_uuid already has that form).
    static func uuidForm(_ id: String) -> String {
        let hex = id.lowercased()
        guard hex.count == 32, hex.allSatisfy(\.isHexDigit) else { return hex }
        var groups: [Substring] = []
        var rest = hex[...]
        for length in [8, 4, 4, 4, 12] {
            groups.append(rest.prefix(length))
            rest = rest.dropFirst(length)
        }
        return groups.joined(separator: "-")
    }

    /// `KEY=value` lines, values optionally quoted, as os-release(5) specifies.
    public static func parseOSRelease(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            var value = trimmed[trimmed.index(after: equals)...]
            if let quote = value.first, quote == "\"" || quote == "'", value.count >= 2, value.last == quote {
                value = value.dropFirst().dropLast()
            }
            values[String(trimmed[..<equals])] = value.replacingOccurrences(of: "\\\"", with: "\"")
        }
        return values
    }

    /// Logical processors and the first model name in /proc/cpuinfo.
    public static func parseCPUInfo(_ text: String) -> (count: Int, model: String?) {
        var count = 0
        var model: String?
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if key == "processor" { count += 1 }
            // x86 says "model name"; some ARM kernels only "Processor" or "Hardware".
            if model == nil, key == "model name" || key == "Processor" || key == "cpu model", !value.isEmpty {
                model = value
            }
        }
        return (count, model)
    }

    /// /proc/meminfo fields in bytes (the file says kB, meaning KiB).
    public static func parseMeminfo(_ text: String) -> [String: Int64] {
        var values: [String: Int64] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let words = line[line.index(after: colon)...].split(separator: " ")
            guard let number = words.first.flatMap({ Int64($0) }) else { continue }
            let multiplier: Int64 = words.dropFirst().first == "kB" ? 1024 : 1
            values[String(line[..<colon])] = number * multiplier
        }
        return values
    }

    public static func parseLoadAverage(_ text: String) -> (Double, Double, Double)? {
        let words = text.split(whereSeparator: \.isWhitespace)
        guard words.count >= 3, let one = Double(words[0]), let five = Double(words[1]), let fifteen = Double(words[2]) else {
            return nil
        }
        return (one, five, fifteen)
    }

    /// Whole seconds since boot.
    public static func parseUptime(_ text: String) -> Int64? {
        guard let first = text.split(whereSeparator: \.isWhitespace).first, let seconds = Double(first) else { return nil }
        return Int64(seconds)
    }

    /// The interface of the IPv4 default route (destination and mask 0, flag RTF_UP).
    public static func defaultRouteInterface(_ text: String) -> String? {
        var best: (interface: String, metric: Int)?
        for line in text.split(whereSeparator: \.isNewline).dropFirst() {
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard fields.count >= 8, fields[1] == "00000000", fields[7] == "00000000",
                let flags = Int(fields[3], radix: 16), flags & 0x1 != 0
            else { continue }
            let metric = Int(fields[6]) ?? 0
            if best == nil || metric < best!.metric { best = (String(fields[0]), metric) }
        }
        return best?.interface
    }

    static func primaryAddress(interfaces: [String: InterfaceFacts], defaultRouteInterface: String?) -> String? {
        if let name = defaultRouteInterface, let address = interfaces[name]?.ipv4.first { return address }
        let candidates = interfaces.values.filter { !$0.isLoopback && !$0.ipv4.isEmpty }.sorted { $0.name < $1.name }
        return (candidates.first { $0.up } ?? candidates.first)?.ipv4.first
    }

    /// Interfaces from getifaddrs, completed with mac, mtu and state from /sys/class/net.
    func collectInterfaces() -> [String: InterfaceFacts] {
        var interfaces: [String: InterfaceFacts] = [:]
        for address in sources.system.interfaceAddresses() {
            var facts = interfaces[address.interface] ?? InterfaceFacts(name: address.interface)
            facts.isLoopback = facts.isLoopback || address.isLoopback
            facts.up = facts.up || address.isUp
            switch address.family {
            case .ipv4: facts.ipv4.append(address.address)
            case .ipv6: facts.ipv6.append(address.address)
            }
            interfaces[address.interface] = facts
        }
        let sysNet = sources.path("sys/class/net")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: sysNet)) ?? []
        for name in names {
            var facts = interfaces[name] ?? InterfaceFacts(name: name)
            func read(_ attribute: String) -> String? {
                sources.read("sys/class/net/\(name)/\(attribute)")?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let mac = read("address"), !mac.isEmpty { facts.mac = mac }
            if let mtu = read("mtu").flatMap({ Int64($0) }) { facts.mtu = mtu }
            // IFF_UP (0x1) and IFF_LOOPBACK (0x8) from the kernel's flags; operstate otherwise.
            if let flags = read("flags").flatMap({ Int($0.dropFirst(2), radix: 16) }) {
                facts.up = flags & 0x1 != 0
                facts.isLoopback = facts.isLoopback || flags & 0x8 != 0
            } else if let state = read("operstate") {
                facts.up = facts.up || state == "up"
            }
            interfaces[name] = facts
        }
        return interfaces
    }
}

/// One network interface as the `interfaces` fact shows it.
struct InterfaceFacts: Sendable, Hashable {
    var name: String
    var ipv4: [String] = []
    var ipv6: [String] = []
    var mac: String?
    var mtu: Int64?
    var up = false
    var isLoopback = false

    var meshValue: MeshValue {
        var map: [String: MeshValue] = [
            "addresses": .list((ipv4 + ipv6).map { .string($0) }),
            "up": .bool(up),
        ]
        if let mac { map["mac"] = .string(mac) }
        if let mtu { map["mtu"] = .int(mtu) }
        return .map(map)
    }
}
