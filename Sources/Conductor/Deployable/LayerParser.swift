import Foundation
import Mesh

/// A value with the place it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var location: FileLocation
}

extension Located: Equatable where Value: Equatable {}
extension Located: Hashable where Value: Hashable {}

/// One parameter as one file writes it.
struct ParameterEntry: Sendable {
    var name: String
    var nameLocation: FileLocation
    var value: ValueTemplate
    var valueLocation: FileLocation
}

/// A fact an instance promises to publish (a custom fact, `custom.<name>` on the bus),
/// optionally only once one of its services has run.
public struct PublishedFact: Hashable, Sendable {
    public var name: String
    public var service: String?
    public var location: FileLocation
}

/// A service as one file writes it; every field optional so an environment can override one.
struct ServiceLayer: Sendable {
    var name: String
    var location: FileLocation
    var kind: Located<ScriptKind>?
    /// Inline text: `script:` (shell) or `manifest:` (puppet, chef).
    var inline: Located<String>?
    var inlineKey: String?
    /// `file:` a path relative to the deployable's directory.
    var file: Located<String>?
    var after: [Located<String>]?
    var parameters: [ParameterEntry] = []
}

/// The instance-shaped part of a file: an instance, a type or a zone.
struct InstanceLayer: Sendable {
    var name: String
    var location: FileLocation
    var count: Located<Int>?
    var provider: Located<String>?
    var type: Located<String>?
    var zone: Located<String>?
    var parameters: [ParameterEntry] = []
    var services: [ServiceLayer] = []
    var publishes: [PublishedFact] = []

    func service(_ name: String) -> ServiceLayer? { self.services.first { $0.name == name } }
}

/// One file: the deployable, or an environment overlay of the same shape.
struct LayerDocument: Sendable {
    enum Role: Sendable { case deployable, environment }

    var file: String
    var role: Role
    var location: FileLocation
    var name: Located<String>?
    var parameters: [ParameterEntry] = []
    var types: [InstanceLayer] = []
    var zones: [InstanceLayer] = []
    var instances: [InstanceLayer] = []
    var providers: [ProviderLayer] = []

    func type(_ name: String) -> InstanceLayer? { self.types.first { $0.name == name } }
    func zone(_ name: String) -> InstanceLayer? { self.zones.first { $0.name == name } }
    func instance(_ name: String) -> InstanceLayer? { self.instances.first { $0.name == name } }
    func provider(_ name: String) -> ProviderLayer? { self.providers.first { $0.name == name } }
}

/// Reads a `ConfigNode` tree into a `LayerDocument`, reporting every unknown key, type
/// error and invalid name with its location.
struct LayerParser {
    private var sink = DiagnosticSink()

    static let documentKeys = ["name", "description", "parameters", "providers", "types", "zones", "instances"]
    static let instanceKeys = ["count", "provider", "type", "zone", "parameters", "services", "publishes", "description"]
    static let typeKeys = ["count", "provider", "zone", "parameters", "description"]
    static let zoneKeys = ["provider", "parameters", "description"]
    static let serviceKeys = ["script", "manifest", "file", "kind", "after", "parameters", "description"]

    static func parse(_ root: ConfigNode, file: String, role: LayerDocument.Role) -> (LayerDocument, [DeployableError]) {
        var parser = LayerParser()
        let document = parser.document(root, file: file, role: role)
        return (document, parser.sink.errors)
    }

    private mutating func document(_ root: ConfigNode, file: String, role: LayerDocument.Role) -> LayerDocument {
        var document = LayerDocument(file: file, role: role, location: root.location)
        guard let entries = self.map(root, "the \(role == .deployable ? "deployable" : "environment file")") else { return document }
        let allowed = role == .deployable ? Self.documentKeys : Self.documentKeys.filter { $0 != "name" }
        for entry in entries {
            switch entry.key {
            case "name" where role == .deployable:
                if let name = self.string(entry.value, "name") {
                    self.checkName(name, at: entry.value.location, what: "deployable name")
                    document.name = Located(value: name, location: entry.value.location)
                }
            case "description":
                _ = self.string(entry.value, "description")
            case "parameters":
                document.parameters = self.parameters(entry.value)
            case "types":
                document.types = self.namedLayers(entry.value, what: "type", keys: Self.typeKeys)
            case "zones":
                document.zones = self.namedLayers(entry.value, what: "zone", keys: Self.zoneKeys)
            case "instances":
                document.instances = self.namedLayers(entry.value, what: "instance", keys: Self.instanceKeys)
            case "providers":
                document.providers = self.providers(entry.value)
            default:
                self.unknownKey(entry, allowed: allowed, in: "the top level")
            }
        }
        if role == .deployable {
            if document.name == nil {
                self.sink.error(.missingKey, "the deployable has no 'name'", at: root.location)
            }
            if entries.first(where: { $0.key == "instances" }) == nil {
                self.sink.error(.missingKey, "the deployable has no 'instances'", at: root.location)
            }
        }
        return document
    }

    /// Each entry's keys are checked once the environment's are merged in (it may set a
    /// `kind` the deployable leaves out).
    private mutating func providers(_ node: ConfigNode) -> [ProviderLayer] {
        guard let entries = self.map(node, "providers") else { return [] }
        var layers: [ProviderLayer] = []
        for entry in entries {
            self.checkName(entry.key, at: entry.keyLocation, what: "provider name")
            if ["local", "agents"].contains(entry.key) {
                self.sink.error(.invalidName, "provider name '\(entry.key)' is built in; name this one otherwise", at: entry.keyLocation)
            }
            guard let fields = self.map(entry.value, "provider '\(entry.key)'") else { continue }
            layers.append(ProviderLayer(name: entry.key, location: entry.keyLocation, entries: fields))
        }
        return layers
    }

    private mutating func namedLayers(_ node: ConfigNode, what: String, keys: [String]) -> [InstanceLayer] {
        guard let entries = self.map(node, "\(what)s") else { return [] }
        var layers: [InstanceLayer] = []
        for entry in entries {
            self.checkName(entry.key, at: entry.keyLocation, what: "\(what) name")
            if what == "instance", entry.key == Reference.selfInstance {
                self.sink.error(.invalidName, "'self' is reserved: ${self.FACT} means the member's own fact", at: entry.keyLocation)
            }
            layers.append(self.instanceLayer(entry, what: what, keys: keys))
        }
        return layers
    }

    private mutating func instanceLayer(_ entry: ConfigNode.Entry, what: String, keys: [String]) -> InstanceLayer {
        var layer = InstanceLayer(name: entry.key, location: entry.keyLocation)
        if case .scalar(let scalar) = entry.value.content, scalar.type == .null { return layer }
        guard let fields = self.map(entry.value, "\(what) '\(entry.key)'") else { return layer }
        for field in fields {
            guard keys.contains(field.key) else {
                self.unknownKey(field, allowed: keys, in: "\(what) '\(entry.key)'")
                continue
            }
            switch field.key {
            case "count":
                guard case .int(let count) = field.value.meshValue, field.value.scalar?.type == .int else {
                    self.sink.error(.typeMismatch, "count must be an integer, got \(field.value.kindName)", at: field.value.location)
                    continue
                }
                guard count >= 1, count <= 10_000 else {
                    self.sink.error(.invalidValue, "count must be from 1 to 10000, got \(count)", at: field.value.location)
                    continue
                }
                layer.count = Located(value: Int(count), location: field.value.location)
            case "provider":
                if let provider = self.string(field.value, "provider") {
                    self.checkName(provider, at: field.value.location, what: "provider name")
                    layer.provider = Located(value: provider, location: field.value.location)
                }
            case "type":
                if let type = self.string(field.value, "type") { layer.type = Located(value: type, location: field.value.location) }
            case "zone":
                if let zone = self.string(field.value, "zone") { layer.zone = Located(value: zone, location: field.value.location) }
            case "description":
                _ = self.string(field.value, "description")
            case "parameters":
                layer.parameters = self.parameters(field.value)
            case "services":
                layer.services = self.services(field.value, instance: entry.key)
            case "publishes":
                layer.publishes = self.publishes(field.value)
            default:
                break
            }
        }
        return layer
    }

    private mutating func services(_ node: ConfigNode, instance: String) -> [ServiceLayer] {
        guard let entries = self.map(node, "services of '\(instance)'") else { return [] }
        var services: [ServiceLayer] = []
        for entry in entries {
            self.checkName(entry.key, at: entry.keyLocation, what: "service name")
            if MeshSchema.host.property(named: entry.key) != nil || entry.key == "custom" {
                self.sink.error(.invalidName, "service name '\(entry.key)' is also a host fact, so ${\(instance).\(entry.key)} would be ambiguous", at: entry.keyLocation)
            }
            var service = ServiceLayer(name: entry.key, location: entry.keyLocation)
            guard let fields = self.map(entry.value, "service '\(instance).\(entry.key)'") else { continue }
            for field in fields {
                switch field.key {
                case "script", "manifest":
                    if service.inline != nil {
                        self.sink.error(.duplicateName, "a service has one of 'script' or 'manifest', not both", at: field.keyLocation)
                    }
                    if let text = self.string(field.value, field.key) {
                        service.inline = Located(value: text, location: field.value.location)
                        service.inlineKey = field.key
                    }
                case "file":
                    if let path = self.string(field.value, "file") { service.file = Located(value: path, location: field.value.location) }
                case "kind":
                    guard let text = self.string(field.value, "kind") else { continue }
                    guard let kind = ScriptKind(rawValue: text) else {
                        let names = ScriptKind.allCases.map(\.rawValue)
                        self.sink.error(.invalidValue, "unknown kind '\(text)'\(Spelling.hint(for: text, among: names)); expected one of: \(names.joined(separator: ", "))", at: field.value.location)
                        continue
                    }
                    service.kind = Located(value: kind, location: field.value.location)
                case "after":
                    service.after = self.stringList(field.value, "after")
                case "parameters":
                    service.parameters = self.parameters(field.value)
                case "description":
                    _ = self.string(field.value, "description")
                default:
                    self.unknownKey(field, allowed: Self.serviceKeys, in: "service '\(instance).\(entry.key)'")
                }
            }
            if let kind = service.kind?.value, let key = service.inlineKey, let inline = service.inline {
                if kind == .shell, key == "manifest" {
                    self.sink.error(.invalidValue, "'manifest' is for kind puppet or chef; a shell service has a 'script'", at: inline.location)
                } else if kind != .shell, key == "script" {
                    self.sink.error(.invalidValue, "a \(kind.rawValue) service has a 'manifest', not a 'script'", at: inline.location)
                }
            }
            if service.inline != nil, let file = service.file {
                self.sink.error(.invalidValue, "a service has inline '\(service.inlineKey!)' or 'file', not both", at: file.location)
            }
            services.append(service)
        }
        return services
    }

    private mutating func publishes(_ node: ConfigNode) -> [PublishedFact] {
        guard case .list(let items) = node.content else {
            self.sink.error(.typeMismatch, "publishes must be a list of fact names (or {fact: NAME, by: SERVICE}), got \(node.kindName)", at: node.location)
            return []
        }
        var facts: [PublishedFact] = []
        for item in items {
            switch item.content {
            case .scalar(let scalar) where scalar.type == .string:
                self.checkName(scalar.text, at: item.location, what: "fact name")
                facts.append(PublishedFact(name: scalar.text, service: nil, location: item.location))
            case .map(let entries):
                var name: String?
                var service: String?
                for entry in entries {
                    switch entry.key {
                    case "fact": name = self.string(entry.value, "fact")
                    case "by": service = self.string(entry.value, "by")
                    default: self.unknownKey(entry, allowed: ["fact", "by"], in: "a published fact")
                    }
                }
                guard let name else {
                    self.sink.error(.missingKey, "a published fact needs 'fact: NAME'", at: item.location)
                    continue
                }
                self.checkName(name, at: item.location, what: "fact name")
                facts.append(PublishedFact(name: name, service: service, location: item.location))
            default:
                self.sink.error(.typeMismatch, "a published fact is a name or {fact: NAME, by: SERVICE}, got \(item.kindName)", at: item.location)
            }
        }
        return facts
    }

    private mutating func parameters(_ node: ConfigNode) -> [ParameterEntry] {
        if case .scalar(let scalar) = node.content, scalar.type == .null { return [] }
        guard let entries = self.map(node, "parameters") else { return [] }
        return entries.map { entry in
            if !Names.isValidParameter(entry.key) {
                self.sink.error(.invalidName, "invalid parameter name '\(entry.key)': parameters become environment variables, so use \(Names.parameterRule)", at: entry.keyLocation)
            }
            return ParameterEntry(
                name: entry.key, nameLocation: entry.keyLocation,
                value: ValueTemplate.parse(entry.value, sink: &self.sink), valueLocation: entry.value.location)
        }
    }

    // MARK: - Small readers

    private mutating func map(_ node: ConfigNode, _ what: String) -> [ConfigNode.Entry]? {
        guard let entries = node.entries else {
            self.sink.error(.typeMismatch, "\(what) must be a map, got \(node.kindName)", at: node.location)
            return nil
        }
        return entries
    }

    private mutating func string(_ node: ConfigNode, _ what: String) -> String? {
        guard let scalar = node.scalar, scalar.type != .null else {
            self.sink.error(.typeMismatch, "\(what) must be a string, got \(node.kindName)", at: node.location)
            return nil
        }
        return scalar.text
    }

    private mutating func stringList(_ node: ConfigNode, _ what: String) -> [Located<String>]? {
        if let scalar = node.scalar, scalar.type == .string { return [Located(value: scalar.text, location: node.location)] }
        guard case .list(let items) = node.content else {
            self.sink.error(.typeMismatch, "\(what) must be a list of names, got \(node.kindName)", at: node.location)
            return nil
        }
        return items.compactMap { item in self.string(item, "an entry of \(what)").map { Located(value: $0, location: item.location) } }
    }

    private mutating func checkName(_ name: String, at location: FileLocation, what: String) {
        if !Names.isValid(name) {
            self.sink.error(.invalidName, "invalid \(what) '\(name)': use \(Names.rule)", at: location)
        }
    }

    private mutating func unknownKey(_ entry: ConfigNode.Entry, allowed: [String], in place: String) {
        self.sink.error(
            .unknownKey,
            "unknown key '\(entry.key)' in \(place)\(Spelling.hint(for: entry.key, among: allowed)); expected one of: \(allowed.joined(separator: ", "))",
            at: entry.keyLocation)
    }
}
