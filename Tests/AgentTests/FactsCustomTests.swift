import Foundation
import Mesh
import Testing

@testable import Agent

@Suite("Custom facts")
struct CustomFactTests {
    private func load(_ tree: FixtureTree, timeout: Duration = .seconds(10)) async -> CustomFactLoader.Result {
        await CustomFactLoader(directory: tree.root, timeout: timeout).load()
    }

    @Test func yamlFileIsTyped() async throws {
        let tree = try FixtureTree([
            "role.yaml": """
                role: database
                tier: 2
                weight: 0.5
                primary: true
                nothing: ~
                tags: [a, b]
                nested:
                  zone: eu-1
                """
        ])
        let result = await load(tree)
        #expect(result.errors.isEmpty)
        #expect(result.facts["role"] == "database")
        #expect(result.facts["tier"] == 2)
        #expect(result.facts["weight"] == 0.5)
        #expect(result.facts["primary"] == true)
        #expect(result.facts["nothing"] == .null)
        #expect(result.facts["tags"] == ["a", "b"])
        #expect(result.facts["nested"] == ["zone": "eu-1"])
    }

    @Test func jsonAndTxtFiles() async throws {
        let tree = try FixtureTree([
            "a.json": #"{"rack": "r12", "slots": [1, 2]}"#,
            "b.txt": "# comment\nowner = ops team\n\nbuilding=B\n",
        ])
        let result = await load(tree)
        #expect(result.errors.isEmpty)
        #expect(result.facts["rack"] == "r12")
        #expect(result.facts["slots"] == [1, 2])
        #expect(result.facts["owner"] == "ops team")
        #expect(result.facts["building"] == "B")
    }

    @Test func laterFilesWinOnSharedKeys() async throws {
        let tree = try FixtureTree(["10-base.yaml": "env: dev\nkeep: 1\n", "20-site.yml": "env: prod\n"])
        let result = await load(tree)
        #expect(result.facts == ["env": "prod", "keep": 1])
    }

    @Test func executableWithJSONOutput() async throws {
        let tree = try FixtureTree()
        try tree.write("gpu", "#!/bin/sh\necho '{\"gpu_count\": 4, \"gpu\": {\"model\": \"A100\"}}'\n", executable: true)
        let result = await load(tree)
        #expect(result.errors.isEmpty)
        #expect(result.facts["gpu_count"] == 4)
        #expect(result.facts["gpu"] == ["model": "A100"])
    }

    @Test func executableWithKeyValueOutputRunsInTheFactsDirectory() async throws {
        let tree = try FixtureTree()
        try tree.write("where.sh", "#!/bin/sh\necho datacenter=ams3\necho \"dir=$(basename \"$(pwd)\")\"\n", executable: true)
        let result = await load(tree)
        #expect(result.errors.isEmpty)
        #expect(result.facts["datacenter"] == "ams3")
        #expect(result.facts["dir"] == .string((tree.root as NSString).lastPathComponent))
    }

    @Test func nonExecutableUnknownFilesAreIgnored() async throws {
        let tree = try FixtureTree(["README": "not facts", ".hidden.yaml": "x: 1"])
        let result = await load(tree)
        #expect(result.facts.isEmpty)
        #expect(result.errors.isEmpty)
    }

    @Test func brokenFilesBecomeErrorEntriesAndTheRestStillLoads() async throws {
        let tree = try FixtureTree([
            "bad.yaml": "key: [unclosed\n  other: : :\n",
            "list.yaml": "- just\n- a list\n",
            "bad.json": "{\"a\": ",
            "good.yaml": "fine: yes\n",
        ])
        try tree.write("fails.sh", "#!/bin/sh\necho 'no such thing' >&2\nexit 2\n", executable: true)
        try tree.write("garbage.sh", "#!/bin/sh\necho 'this is not a fact'\n", executable: true)
        let result = await load(tree)
        #expect(result.facts == ["fine": true])
        #expect(result.errors["bad.yaml"]?.hasPrefix("invalid YAML") == true)
        #expect(result.errors["list.yaml"] == "expected a YAML mapping at the top level")
        #expect(result.errors["bad.json"]?.hasPrefix("invalid JSON") == true)
        #expect(result.errors["fails.sh"] == "exited with status 2: no such thing")
        #expect(result.errors["garbage.sh"]?.contains("expected key=value") == true)
        #expect(result.errors.count == 5)
    }

    @Test(.timeLimit(.minutes(1)))
    func hangingExecutableIsKilledAtItsTimeout() async throws {
        let tree = try FixtureTree(["other.yaml": "still: here\n"])
        try tree.write("hang.sh", "#!/bin/sh\nsleep 300\n", executable: true)
        let started = ContinuousClock.now
        let result = await load(tree, timeout: .milliseconds(300))
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(result.errors["hang.sh"]?.contains("timed out") == true)
        #expect(result.facts["still"] == "here")
    }

    @Test func missingDirectoryMeansNoCustomFacts() async {
        let result = await CustomFactLoader(directory: "/nonexistent/conductor/facts.d").load()
        #expect(result == CustomFactLoader.Result())
    }
}

@Suite("Fact store")
struct FactStoreTests {
    @Test func snapshotCarriesCustomFactsErrorsAndSchema() async throws {
        let facts = try FixtureTree(["site.yaml": "site: lab\ncount: 3\n", "bad.json": "[1]"])
        let store = FactStore(sources: FactSources(customFactsDirectory: facts.root))
        let before = Date()
        let snapshot = await store.refresh()
        #expect(snapshot.refreshedAt >= before)
        #expect(snapshot["custom.site"] == "lab")
        #expect(snapshot["custom_errors"] == ["bad.json": "expected a JSON object at the top level"])
        #expect(snapshot["hostname"]?.stringValue?.isEmpty == false)
        let countSchema = try #require(snapshot.schema.property(named: "custom.count"))
        #expect(countSchema.type == .int)
        #expect(countSchema.isStatistic == false)
        #expect(snapshot.schema.property(named: "memory_free")?.isStatistic == true)
    }

    @Test func statisticsRefreshKeepsPropertiesAndMovesTheTimestamp() async throws {
        let tree = try FixtureTree(["proc/uptime": "100.5 1.0\n", "proc/meminfo": "MemTotal: 1000 kB\nMemFree: 10 kB\n"])
        let store = FactStore(sources: FactSources(root: tree.root, customFactsDirectory: tree.path("none"), system: fixtureLikeSystem))
        let first = await store.refresh()
        #expect(first["uptime"] == 100)
        try tree.write("proc/uptime", "200.9 1.0\n")
        try await Task.sleep(for: .milliseconds(5))
        let second = await store.refreshStatistics()
        #expect(second["uptime"] == 200)
        #expect(second["memory_total"] == .int(1000 * 1024))
        #expect(second.refreshedAt > first.refreshedAt)
        #expect(second.propertiesRefreshedAt == first.propertiesRefreshedAt)
    }

    @Test(.timeLimit(.minutes(1)))
    func runRefreshesStatisticsOnTheInterval() async throws {
        let tree = try FixtureTree(["proc/uptime": "1 1\n"])
        let store = FactStore(
            sources: FactSources(root: tree.root, customFactsDirectory: tree.path("none"), system: fixtureLikeSystem),
            statisticsInterval: .milliseconds(20))
        let runner = Task { await store.run() }
        defer { runner.cancel() }
        var seen: MeshValue?
        try tree.write("proc/uptime", "42 1\n")
        for _ in 0..<250 where seen != 42 {
            try await Task.sleep(for: .milliseconds(20))
            seen = await store.snapshot["uptime"]
        }
        #expect(seen == 42)
    }
}

private let fixtureLikeSystem = SystemInfo(
    hostname: { "h" }, canonicalName: { _ in nil }, kernelRelease: { "k" }, machine: { "m" },
    interfaceAddresses: { [] }, onlineProcessors: { 1 })
