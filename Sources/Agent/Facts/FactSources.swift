#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Where facts come from. Every file is read below `root`, so tests point it at a
/// fixture tree; the system calls (host name, uname, interface addresses) are closures
/// for the same reason.
public struct FactSources: Sendable {
    public var root: String
    /// Custom facts directory, absolute on the real system (not below `root`).
    public var customFactsDirectory: String
    /// sshd_config, relative to `root`.
    public var sshdConfigPath: String
    public var customFactTimeout: Duration
    public var customFactOutputLimit: Int
    public var system: SystemInfo
    /// Reported as the `ipaddress` fact instead of the primary interface's address: a
    /// local instance of `conductor launch` is told its own loopback address (127.0.0.N).
    public var ipaddressOverride: String?

    public init(
        root: String = "/",
        customFactsDirectory: String = "/etc/conductor/facts.d",
        sshdConfigPath: String = "etc/ssh/sshd_config",
        customFactTimeout: Duration = .seconds(10),
        customFactOutputLimit: Int = 256 * 1024,
        system: SystemInfo = .live,
        ipaddressOverride: String? = nil
    ) {
        self.root = root
        self.customFactsDirectory = customFactsDirectory
        self.sshdConfigPath = sshdConfigPath
        self.customFactTimeout = customFactTimeout
        self.customFactOutputLimit = customFactOutputLimit
        self.system = system
        self.ipaddressOverride = ipaddressOverride
    }

    /// `relative` (with or without a leading `/`) below the root.
    public func path(_ relative: String) -> String {
        let trimmed = relative.drop(while: { $0 == "/" })
        return root.hasSuffix("/") ? root + trimmed : root + "/" + trimmed
    }

    func read(_ relative: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path(relative)) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// One address of one interface, as getifaddrs reports it.
public struct InterfaceAddress: Sendable, Hashable {
    public enum Family: Sendable, Hashable { case ipv4, ipv6 }
    public var interface: String
    public var family: Family
    public var address: String
    public var isUp: Bool
    public var isLoopback: Bool

    public init(interface: String, family: Family, address: String, isUp: Bool, isLoopback: Bool) {
        self.interface = interface
        self.family = family
        self.address = address
        self.isUp = isUp
        self.isLoopback = isLoopback
    }
}

/// The facts that come from system calls rather than files.
public struct SystemInfo: Sendable {
    public var hostname: @Sendable () -> String
    /// Canonical name of a host name; nil when it does not resolve.
    public var canonicalName: @Sendable (String) -> String?
    public var kernelRelease: @Sendable () -> String
    public var machine: @Sendable () -> String
    public var interfaceAddresses: @Sendable () -> [InterfaceAddress]
    public var onlineProcessors: @Sendable () -> Int

    public init(
        hostname: @escaping @Sendable () -> String,
        canonicalName: @escaping @Sendable (String) -> String?,
        kernelRelease: @escaping @Sendable () -> String,
        machine: @escaping @Sendable () -> String,
        interfaceAddresses: @escaping @Sendable () -> [InterfaceAddress],
        onlineProcessors: @escaping @Sendable () -> Int
    ) {
        self.hostname = hostname
        self.canonicalName = canonicalName
        self.kernelRelease = kernelRelease
        self.machine = machine
        self.interfaceAddresses = interfaceAddresses
        self.onlineProcessors = onlineProcessors
    }

    public static let live = SystemInfo(
        hostname: {
            var buffer = [CChar](repeating: 0, count: 256)
            guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
            return string(fromNulTerminated: buffer)
        },
        canonicalName: liveCanonicalName,
        kernelRelease: { unameField(\.release) },
        machine: { unameField(\.machine) },
        interfaceAddresses: liveInterfaceAddresses,
        onlineProcessors: { ProcessInfo.processInfo.activeProcessorCount }
    )
}

private func unameField<T>(_ field: KeyPath<utsname, T>) -> String {
    var names = utsname()
    guard uname(&names) == 0 else { return "unknown" }
    return withUnsafeBytes(of: names[keyPath: field]) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}

private func liveCanonicalName(_ host: String) -> String? {
    var hints = addrinfo()
    hints.ai_flags = AI_CANONNAME
    hints.ai_family = AF_UNSPEC
    #if canImport(Glibc)
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    #else
    hints.ai_socktype = SOCK_STREAM
    #endif
    var result: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
    defer { freeaddrinfo(first) }
    guard let name = first.pointee.ai_canonname else { return nil }
    return String(cString: name)
}

private func liveInterfaceAddresses() -> [InterfaceAddress] {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return [] }
    defer { freeifaddrs(first) }
    var addresses: [InterfaceAddress] = []
    var cursor: UnsafeMutablePointer<ifaddrs>? = first
    while let entry = cursor {
        defer { cursor = entry.pointee.ifa_next }
        guard let socketAddress = entry.pointee.ifa_addr else { continue }
        let family = Int32(socketAddress.pointee.sa_family)
        guard family == AF_INET || family == AF_INET6 else { continue }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let length = family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
        guard getnameinfo(socketAddress, socklen_t(length), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else {
            continue
        }
        let flags = entry.pointee.ifa_flags
        addresses.append(
            InterfaceAddress(
                interface: String(cString: entry.pointee.ifa_name),
                family: family == AF_INET ? .ipv4 : .ipv6,
                address: string(fromNulTerminated: host),
                isUp: flags & UInt32(IFF_UP) != 0,
                isLoopback: flags & UInt32(IFF_LOOPBACK) != 0
            )
        )
    }
    return addresses
}

private func string(fromNulTerminated buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
