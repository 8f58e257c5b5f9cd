import Foundation
import Mesh

/// Owns the current facts of this host. Statistics are collected every
/// `statisticsInterval` by `run`; properties and custom facts on `refresh()` and every
/// `propertiesInterval`. Readers take a `snapshot` and never wait for a collection.
public actor FactStore {
    public let collector: HostFactCollector
    public let customFacts: CustomFactLoader
    public let statisticsInterval: Duration
    public let propertiesInterval: Duration

    private var properties: [String: MeshValue] = [:]
    private var statistics: [String: MeshValue] = [:]
    private var custom = CustomFactLoader.Result()
    private var refreshedAt = Date(timeIntervalSince1970: 0)
    private var propertiesRefreshedAt = Date(timeIntervalSince1970: 0)

    public init(
        sources: FactSources = FactSources(),
        statisticsInterval: Duration = .seconds(15),
        propertiesInterval: Duration = .seconds(300)
    ) {
        self.collector = HostFactCollector(sources: sources)
        self.customFacts = CustomFactLoader(sources: sources)
        self.statisticsInterval = statisticsInterval
        self.propertiesInterval = propertiesInterval
    }

    /// The facts as last collected; empty until the first `refresh()`.
    public var snapshot: FactSnapshot {
        var values = properties.merging(statistics) { _, statistic in statistic }
        values["custom"] = .map(custom.facts)
        if !custom.errors.isEmpty { values["custom_errors"] = .map(custom.errors.mapValues(MeshValue.string)) }
        return FactSnapshot(
            values: values,
            refreshedAt: refreshedAt,
            propertiesRefreshedAt: propertiesRefreshedAt,
            schema: HostFactSchema.describe(custom: custom.facts)
        )
    }

    /// Collects everything now, custom executables included.
    @discardableResult
    public func refresh() async -> FactSnapshot {
        let collector = self.collector
        let loader = self.customFacts
        // File reads and custom executables stay off the actor so snapshots stay available.
        async let properties = Task.detached { collector.collectProperties() }.value
        async let statistics = Task.detached { collector.collectStatistics() }.value
        async let custom = loader.load()
        (self.properties, self.statistics, self.custom) = await (properties, statistics, custom)
        let now = Date()
        refreshedAt = now
        propertiesRefreshedAt = now
        return snapshot
    }

    /// Collects only the statistics: a few small /proc reads.
    @discardableResult
    public func refreshStatistics() -> FactSnapshot {
        statistics = collector.collectStatistics()
        refreshedAt = Date()
        return snapshot
    }

    /// Refreshes on the intervals until cancelled. The clock is injectable for tests.
    public func run<C: Clock>(clock: C = ContinuousClock()) async where C.Duration == Duration {
        await refresh()
        var lastFull = clock.now
        while !Task.isCancelled {
            do {
                try await clock.sleep(for: statisticsInterval)
            } catch {
                return
            }
            if lastFull.duration(to: clock.now) >= propertiesInterval {
                await refresh()
                lastFull = clock.now
            } else {
                refreshStatistics()
            }
        }
    }
}
