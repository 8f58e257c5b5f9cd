import Foundation
import Mesh

/// Facts with their collection times.
public struct FactSnapshot: Sendable, Hashable {
    /// The `host` object: built-in facts, `custom`, and `custom_errors` when a custom fact failed.
    public var values: [String: MeshValue]
    /// When any value last changed by a collection (statistics or full).
    public var refreshedAt: Date
    /// When properties and custom facts were last collected.
    public var propertiesRefreshedAt: Date
    /// The `host` class with a descriptor for each custom fact.
    public var schema: SchemaClass

    public init(values: [String: MeshValue], refreshedAt: Date, propertiesRefreshedAt: Date, schema: SchemaClass) {
        self.values = values
        self.refreshedAt = refreshedAt
        self.propertiesRefreshedAt = propertiesRefreshedAt
        self.schema = schema
    }

    public var value: MeshValue { .map(values) }

    /// A fact by dotted path: `snapshot["sshd.port"]`, `snapshot["custom.role"]`.
    public subscript(path: String) -> MeshValue? { value[path: path] }
}

/// The bus schema of the `host` class (`MeshSchema.host`, the one definition) as the
/// collectors use it.
public enum HostFactSchema {
    /// What `HostFactCollector` collects: every host property but `custom`, which the
    /// `FactStore` adds from the facts directory.
    public static let builtIn: [PropertyDescriptor] = MeshSchema.host.properties.filter { $0.name != "custom" }

    public static let statisticNames: Set<String> = Set(builtIn.filter(\.isStatistic).map(\.name))

    /// The `host` class plus one descriptor per custom fact, typed from its current value.
    public static func describe(custom: [String: MeshValue]) -> SchemaClass {
        var schema = MeshSchema.host
        schema.properties += custom.keys.sorted().compactMap { key in
            PropertyType(of: custom[key]!).map { PropertyDescriptor("custom.\(key)", $0, "custom fact") }
        }
        return schema
    }
}
