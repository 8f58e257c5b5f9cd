import Foundation
import Mesh
import Testing

@testable import Agent

/// A fixture machine: two CPUs, 8 GiB, eth0 carrying the default route.
private func fixtureMachine() throws -> FixtureTree {
    try FixtureTree([
        "proc/meminfo": """
            MemTotal:        8388608 kB
            MemFree:          524288 kB
            MemAvailable:    4194304 kB
            Buffers:           10240 kB
            SwapTotal:       2097152 kB
            SwapFree:        1048576 kB
            HugePages_Total:       0
            """,
        "proc/loadavg": "0.52 0.58 0.59 2/1210 12345\n",
        "proc/uptime": "350735.47 234388.90\n",
        "proc/cpuinfo": """
            processor\t: 0
            vendor_id\t: GenuineIntel
            model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
            cpu MHz\t\t: 2399.998

            processor\t: 1
            vendor_id\t: GenuineIntel
            model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz

            """,
        "proc/net/route": """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
            eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0
            eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0

            """,
        "proc/sys/kernel/osrelease": "6.1.0-18-amd64\n",
        "etc/os-release": """
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
            NAME="Debian GNU/Linux"
            VERSION_ID="12"
            # a comment
            ID=debian
            """,
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/sshd_config": "Port 2222\n",
        "sys/class/net/eth0/address": "52:54:00:12:34:56\n",
        "sys/class/net/eth0/mtu": "1500\n",
        "sys/class/net/eth0/flags": "0x1003\n",
        "sys/class/net/eth1/address": "52:54:00:ab:cd:ef\n",
        "sys/class/net/eth1/mtu": "9000\n",
        "sys/class/net/eth1/flags": "0x1002\n",
        "sys/class/net/lo/address": "00:00:00:00:00:00\n",
        "sys/class/net/lo/mtu": "65536\n",
        "sys/class/net/lo/flags": "0x9\n",
    ])
}

private let fixtureSystem = SystemInfo(
    hostname: { "node1" },
    canonicalName: { _ in "node1.example.org" },
    kernelRelease: { "should-not-be-used" },
    machine: { "x86_64" },
    interfaceAddresses: {
        [
            InterfaceAddress(interface: "lo", family: .ipv4, address: "127.0.0.1", isUp: true, isLoopback: true),
            InterfaceAddress(interface: "eth1", family: .ipv4, address: "192.168.1.7", isUp: true, isLoopback: false),
            InterfaceAddress(interface: "eth0", family: .ipv4, address: "10.0.0.5", isUp: true, isLoopback: false),
            InterfaceAddress(interface: "eth0", family: .ipv6, address: "fe80::5054:ff:fe12:3456%eth0", isUp: true, isLoopback: false),
        ]
    },
    onlineProcessors: { 64 }
)

@Suite("Host facts")
struct HostFactTests {
    @Test func fixtureMachineFacts() throws {
        let tree = try fixtureMachine()
        let facts = MeshValue.map(HostFactCollector(sources: FactSources(root: tree.root, system: fixtureSystem)).collectAll())

        #expect(facts[path: "hostname"] == "node1")
        #expect(facts[path: "fqdn"] == "node1.example.org")
        #expect(facts[path: "uuid"] == "01234567-89ab-cdef-0123-456789abcdef")
        #expect(facts[path: "os"] == "linux")
        #expect(facts[path: "os_release.ID"] == "debian")
        #expect(facts[path: "os_release.VERSION_ID"] == "12")
        #expect(facts[path: "os_pretty_name"] == "Debian GNU/Linux 12 (bookworm)")
        #expect(facts[path: "kernel"] == "6.1.0-18-amd64")
        #expect(facts[path: "arch"] == "x86_64")
        #expect(facts[path: "cpu_count"] == 2)
        #expect(facts[path: "cpu_model"] == "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz")
        #expect(facts[path: "memory_total"] == .int(8 << 30))
        #expect(facts[path: "memory_free"] == .int(4 << 30))
        #expect(facts[path: "swap_total"] == .int(2 << 30))
        #expect(facts[path: "swap_free"] == .int(1 << 30))
        #expect(facts[path: "load_average_1"] == 0.52)
        #expect(facts[path: "load_average_5"] == 0.58)
        #expect(facts[path: "load_average_15"] == 0.59)
        #expect(facts[path: "uptime"] == 350735)
        #expect(facts[path: "sshd.port"] == 2222)
    }

    @Test func primaryAddressFollowsTheLowestMetricDefaultRoute() throws {
        let tree = try fixtureMachine()
        let facts = MeshValue.map(HostFactCollector(sources: FactSources(root: tree.root, system: fixtureSystem)).collectProperties())
        #expect(facts[path: "ipaddress"] == "10.0.0.5")
        #expect(facts[path: "interfaces.eth0.addresses"] == ["10.0.0.5", "fe80::5054:ff:fe12:3456%eth0"])
        #expect(facts[path: "interfaces.eth0.mac"] == "52:54:00:12:34:56")
        #expect(facts[path: "interfaces.eth0.mtu"] == 1500)
        #expect(facts[path: "interfaces.eth0.up"] == true)
        #expect(facts[path: "interfaces.eth1.up"] == false)
        #expect(facts[path: "interfaces.eth1.mtu"] == 9000)
        #expect(facts[path: "interfaces.lo.addresses"] == ["127.0.0.1"])
    }

    @Test func withoutADefaultRouteTheFirstNonLoopbackAddressIsPrimary() throws {
        let tree = try fixtureMachine()
        try tree.write("proc/net/route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n")
        let facts = HostFactCollector(sources: FactSources(root: tree.root, system: fixtureSystem)).collectProperties()
        // eth1 is down per its flags, so the up interface eth0 is preferred.
        #expect(facts["ipaddress"] == "10.0.0.5")
    }

    @Test func missingFilesLeaveFactsOutInsteadOfFailing() throws {
        let tree = try FixtureTree()
        let facts = HostFactCollector(sources: FactSources(root: tree.root, system: fixtureSystem)).collectAll()
        #expect(facts["hostname"] == "node1")
        #expect(facts["memory_total"] == nil)
        #expect(facts["load_average_1"] == nil)
        #expect(facts["cpu_count"] == 64)  // from the system when /proc/cpuinfo is missing
        #expect(facts["kernel"] == "should-not-be-used")
        #expect(facts["sshd"] == ["port": 22, "ports": [22]])
        #expect(facts["os_release"] == [:])
    }

    @Test func fqdnFallsBackToTheHostName() {
        #expect(HostFactCollector.fullyQualified(hostname: "db1", canonical: nil) == "db1")
        #expect(HostFactCollector.fullyQualified(hostname: "db1", canonical: "localhost.localdomain") == "db1")
        #expect(HostFactCollector.fullyQualified(hostname: "db1.example.org", canonical: "other") == "db1.example.org")
    }

    @Test func machineIDIsShownAsAUUID() {
        #expect(HostFactCollector.uuidForm("0123456789ABCDEF0123456789abcdef") == "01234567-89ab-cdef-0123-456789abcdef")
        #expect(HostFactCollector.uuidForm("4c4c4544-0042-3510-8051-b4c04f4e4d32") == "4c4c4544-0042-3510-8051-b4c04f4e4d32")
    }

    @Test func osReleaseQuotingAndComments() {
        let values = HostFactCollector.parseOSRelease("ID='opensuse-leap'\nVERSION_ID=\"15.5\"\n#X=1\nNAME=\"A \\\"quoted\\\" name\"\n")
        #expect(values == ["ID": "opensuse-leap", "VERSION_ID": "15.5", "NAME": "A \"quoted\" name"])
    }

    @Test func everyBuiltInFactHasTheTypeTheSchemaSays() throws {
        let tree = try fixtureMachine()
        let facts = HostFactCollector(sources: FactSources(root: tree.root, system: fixtureSystem)).collectAll()
        let object = MeshValue.map(facts)
        for descriptor in HostFactSchema.builtIn {
            let value = try #require(object[path: descriptor.name], "\(descriptor.name) missing")
            let expected: PropertyType = descriptor.type == .uuid ? .string : descriptor.type
            #expect(PropertyType(of: value) == expected, "\(descriptor.name)")
        }
        let topLevel = Set(HostFactSchema.builtIn.map { String($0.name.split(separator: ".")[0]) })
        #expect(Set(facts.keys) == topLevel)
        let statistics = HostFactCollector(sources: FactSources(root: tree.root, system: fixtureSystem)).collectStatistics()
        #expect(Set(statistics.keys) == HostFactSchema.statisticNames)
    }

    @Test func realMachine() throws {
        let facts = MeshValue.map(HostFactCollector().collectAll())
        #expect(facts[path: "hostname"]?.stringValue?.isEmpty == false)
        #expect(facts[path: "fqdn"]?.stringValue?.isEmpty == false)
        #expect((facts[path: "memory_total"]?.intValue ?? 0) > 0)
        #expect((facts[path: "memory_free"]?.intValue ?? -1) >= 0)
        #expect((facts[path: "cpu_count"]?.intValue ?? 0) >= 1)
        #expect((facts[path: "uptime"]?.intValue ?? -1) >= 0)
        #expect(facts[path: "load_average_1"]?.doubleValue != nil)
        #expect(facts[path: "kernel"]?.stringValue?.isEmpty == false)
        #expect(facts[path: "os"] == "linux")
        #expect(facts[path: "uuid"]?.stringValue.flatMap(UUID.init(uuidString:)) != nil)
        #expect(facts[path: "sshd.port"]?.intValue.map { (1...65535).contains($0) } == true)
        let address = try #require(facts[path: "ipaddress"]?.stringValue)
        var parsed = in_addr()
        #expect(inet_pton(AF_INET, address, &parsed) == 1, "ipaddress \(address) is not IPv4")
        let interfaces = try #require(facts[path: "interfaces"]?.mapValue)
        #expect(interfaces.values.contains { $0[path: "addresses"]?.listValue?.contains(.string(address)) == true })
    }
}
