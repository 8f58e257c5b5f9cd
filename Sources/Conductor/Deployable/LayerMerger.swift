import Mesh

/// Applies the hierarchy — defaults → type → instance → environment → zone → `--set` —
/// to the deployable and its environment file, keeping every value's origin for `--explain`.
///
/// Per service parameter the candidates are, lowest first: the deployable's top-level
/// `parameters`; its `types.<type>.parameters`; its instance's and then the service's
/// `parameters`; the same four from the environment file; `zones.<zone>.parameters` from
/// the deployable then the environment; and `--set` for top-level names. The highest wins.
struct LayerMerger {
    private struct Candidate<Value: Hashable & Sendable> {
        var value: Value
        var location: FileLocation?
        var layer: Layer
        var secretPath: String?
    }

    private var sink = DiagnosticSink()
    private var missingRequired: [(name: String, path: String, location: FileLocation)] = []

    static func merge(
        deployable: LayerDocument, environment: (name: String, document: LayerDocument)?,
        settings: [(name: String, value: String)], directory: String
    ) -> (Deployable?, [DeployableError]) {
        var merger = LayerMerger()
        let result = merger.merge(deployable, environment, settings, directory)
        return (result, merger.sink.errors)
    }

    private mutating func merge(
        _ dep: LayerDocument, _ environment: (name: String, document: LayerDocument)?,
        _ settings: [(name: String, value: String)], _ directory: String
    ) -> Deployable? {
        let env = environment?.document
        let known = dep.instances.map(\.name)
        for instance in env?.instances ?? [] where dep.instance(instance.name) == nil {
            self.sink.error(
                .unknownReference,
                "the environment overrides instance '\(instance.name)', which the deployable does not define\(Spelling.hint(for: instance.name, among: known))",
                at: instance.location)
        }
        let topLevelNames = Self.orderedNames([dep.parameters, env?.parameters ?? []])
        var setValues: [String: String] = [:]
        for setting in settings {
            guard topLevelNames.contains(setting.name) else {
                let list = topLevelNames.isEmpty ? "it has none" : "they are: \(topLevelNames.joined(separator: ", "))"
                self.sink.error(
                    .unknownSetting,
                    "--set \(setting.name): the deployable has no top-level parameter '\(setting.name)'\(Spelling.hint(for: setting.name, among: topLevelNames)); \(list)",
                    at: nil)
                continue
            }
            setValues[setting.name] = setting.value
        }

        func topLevelCandidates(_ name: String) -> [Candidate<ValueTemplate>] {
            var candidates: [Candidate<ValueTemplate>] = []
            Self.add(dep.parameters, name, .defaults, "parameters", to: &candidates)
            Self.add(env?.parameters ?? [], name, .environment, "parameters", to: &candidates)
            if let value = setValues[name] {
                candidates.append(Candidate(value: .literal(.string(value)), location: nil, layer: .commandLine, secretPath: nil))
            }
            return candidates
        }

        var parameters: [Parameter] = []
        for name in topLevelNames {
            parameters.append(self.parameter(name, topLevelCandidates(name), path: "parameters.\(name)"))
        }

        // Read first: an instance that phones home has services without scripts.
        let providerDefinitions = self.providers(dep, env, directory: directory)
        var instances: [Instance] = []
        for depInstance in dep.instances {
            let envInstance = env?.instance(depInstance.name)
            let typeName = (envInstance?.type ?? depInstance.type)
            let zoneName = (envInstance?.zone ?? depInstance.zone)
            var typeLayers: [InstanceLayer] = []
            if let typeName {
                typeLayers = [dep.type(typeName.value), env?.type(typeName.value)].compactMap { $0 }
                if typeLayers.isEmpty {
                    let names = Self.orderedNames([dep.types.map(\.name), env?.types.map(\.name) ?? []])
                    self.sink.error(.unknownReference, "unknown type '\(typeName.value)'\(Spelling.hint(for: typeName.value, among: names))", at: typeName.location)
                }
            }
            var zoneLayers: [InstanceLayer] = []
            if let zoneName {
                zoneLayers = [dep.zone(zoneName.value), env?.zone(zoneName.value)].compactMap { $0 }
                if zoneLayers.isEmpty {
                    let names = Self.orderedNames([dep.zones.map(\.name), env?.zones.map(\.name) ?? []])
                    self.sink.error(.unknownReference, "unknown zone '\(zoneName.value)'\(Spelling.hint(for: zoneName.value, among: names))", at: zoneName.location)
                }
            }
            let depType = typeName.flatMap { dep.type($0.value) }
            let envType = typeName.flatMap { env?.type($0.value) }
            let depZone = zoneName.flatMap { dep.zone($0.value) }
            let envZone = zoneName.flatMap { env?.zone($0.value) }
            // Instance-shaped layers in precedence order, for count and provider.
            let ordered: [(InstanceLayer?, Layer)] = [
                (depType, .type), (depInstance, .instance), (envType, .environment), (envInstance, .environment),
                (depZone, .zone), (envZone, .zone),
            ]
            var counts: [Candidate<Int>] = [Candidate(value: 1, location: nil, layer: .builtin)]
            var providers: [Candidate<String>] = [Candidate(value: "local", location: nil, layer: .builtin)]
            for (layer, kind) in ordered {
                if let count = layer?.count { counts.append(Candidate(value: count.value, location: count.location, layer: kind)) }
                if let provider = layer?.provider {
                    providers.append(Candidate(value: provider.value, location: provider.location, layer: kind))
                }
            }

            let provider = Self.resolve(providers)
            let phonesHome = providerDefinitions.first { $0.name == provider.value }?.settings.kind == "phone-home"
            var serviceNames = depInstance.services.map(\.name)
            for service in envInstance?.services ?? [] where !serviceNames.contains(service.name) { serviceNames.append(service.name) }
            var services: [Service] = []
            for serviceName in serviceNames {
                let depService = depInstance.service(serviceName)
                let envService = envInstance?.service(serviceName)
                let location = depService?.location ?? envService!.location
                let inline = envService?.inline ?? (envService?.file == nil ? depService?.inline : nil)
                let file = envService?.file ?? (envService?.inline == nil ? depService?.file : nil)
                let kind = envService?.kind?.value ?? depService?.kind?.value ?? .shell
                let source: Service.Source
                let sourceLocation: FileLocation?
                if phonesHome {
                    // The instance fetches its parameters and runs nothing we send.
                    if let written = inline?.location ?? file?.location {
                        self.sink.error(
                            .invalidValue,
                            "service '\(depInstance.name).\(serviceName)' has a script, but instance '\(depInstance.name)' phones home (provider '\(provider.value)', kind phone-home) and runs none: it fetches its parameters only; remove the script",
                            at: written)
                    }
                    source = .inline("")
                    sourceLocation = nil
                } else if let inline {
                    source = .inline(inline.value)
                    sourceLocation = inline.location
                } else if let file {
                    source = .file(file.value)
                    sourceLocation = file.location
                } else {
                    self.sink.error(.missingKey, "service '\(depInstance.name).\(serviceName)' has no 'script', 'manifest' or 'file'", at: location)
                    source = .inline("")
                    sourceLocation = nil
                }
                let after = envService?.after ?? depService?.after ?? []

                let instanceName = depInstance.name
                func candidates(_ name: String) -> [Candidate<ValueTemplate>] {
                    var list: [Candidate<ValueTemplate>] = []
                    Self.add(dep.parameters, name, .defaults, "parameters", to: &list)
                    Self.add(depType?.parameters ?? [], name, .type, "types.\(typeName?.value ?? "")", to: &list)
                    Self.add(depInstance.parameters, name, .instance, instanceName, to: &list)
                    Self.add(depService?.parameters ?? [], name, .instance, "\(instanceName).\(serviceName)", to: &list)
                    Self.add(env?.parameters ?? [], name, .environment, "parameters", to: &list)
                    Self.add(envType?.parameters ?? [], name, .environment, "types.\(typeName?.value ?? "")", to: &list)
                    Self.add(envInstance?.parameters ?? [], name, .environment, instanceName, to: &list)
                    Self.add(envService?.parameters ?? [], name, .environment, "\(instanceName).\(serviceName)", to: &list)
                    Self.add(depZone?.parameters ?? [], name, .zone, "zones.\(zoneName?.value ?? "")", to: &list)
                    Self.add(envZone?.parameters ?? [], name, .zone, "zones.\(zoneName?.value ?? "")", to: &list)
                    if let value = setValues[name] {
                        list.append(Candidate(value: .literal(.string(value)), location: nil, layer: .commandLine, secretPath: nil))
                    }
                    return list
                }
                let names = Self.orderedNames([
                    dep.parameters, depType?.parameters ?? [], depInstance.parameters, depService?.parameters ?? [],
                    env?.parameters ?? [], envType?.parameters ?? [], envInstance?.parameters ?? [], envService?.parameters ?? [],
                    depZone?.parameters ?? [], envZone?.parameters ?? [],
                ])
                let serviceParameters = names.map { name in
                    self.parameter(name, candidates(name), path: "\(instanceName).\(serviceName).\(name)")
                }
                services.append(Service(
                    name: serviceName, kind: kind, source: source, sourceLocation: sourceLocation, after: after,
                    parameters: serviceParameters, location: location))
            }
            var publishes = depInstance.publishes
            for fact in envInstance?.publishes ?? [] where !publishes.contains(where: { $0.name == fact.name }) { publishes.append(fact) }

            instances.append(Instance(
                name: depInstance.name, count: Self.resolve(counts), provider: provider,
                type: typeName?.value, zone: zoneName?.value, services: services, publishes: publishes,
                location: depInstance.location))
        }

        self.checkProviders(of: instances, providers: providerDefinitions)

        self.reportMissingRequired(environment: environment?.name)
        guard let name = dep.name else { return nil }
        return Deployable(
            name: name.value, file: dep.file, directory: directory, environment: environment?.name,
            parameters: parameters, instances: instances, providers: providerDefinitions)
    }

    /// The deployable's `providers:`, each key overridden by the environment file's entry
    /// of the same name (which may also define new ones).
    private mutating func providers(_ dep: LayerDocument, _ env: LayerDocument?, directory: String) -> [ProviderDefinition] {
        var names = dep.providers.map(\.name)
        for layer in env?.providers ?? [] where !names.contains(layer.name) { names.append(layer.name) }
        var reader = ProviderSettingsReader(sink: DiagnosticSink(), directory: directory)
        var definitions: [ProviderDefinition] = []
        for name in names {
            let base = dep.provider(name)
            let overlay = env?.provider(name)
            var entries = base?.entries ?? []
            for entry in overlay?.entries ?? [] {
                if let index = entries.firstIndex(where: { $0.key == entry.key }) { entries[index] = entry } else { entries.append(entry) }
            }
            let location = base?.location ?? overlay!.location
            if let definition = reader.definition(name: name, location: location, entries: entries) { definitions.append(definition) }
        }
        self.sink.append(contentsOf: reader.sink.errors)
        return definitions
    }

    /// Every instance names a built-in provider or a defined one, and each SSH pool has
    /// room for the members placed on it.
    private mutating func checkProviders(of instances: [Instance], providers: [ProviderDefinition]) {
        let builtIn = ["local", "agents"]
        let known = builtIn + providers.map(\.name)
        for instance in instances where !known.contains(instance.provider.value) {
            let name = instance.provider.value
            let hint = ProviderSettings.kinds.contains(name)
                ? "; '\(name)' is a kind: define a provider under 'providers:' with 'kind: \(name)' and name it here"
                : Spelling.hint(for: name, among: known)
            self.sink.error(
                .unknownReference, "instance '\(instance.name)' uses provider '\(name)', which is not defined\(hint); known: \(known.joined(separator: ", "))",
                at: instance.provider.origin.location ?? instance.location)
        }
        for definition in providers {
            guard case .ssh(let pool) = definition.settings else { continue }
            let members = instances.filter { $0.provider.value == definition.name }.flatMap(\.members)
            let room = pool.hosts.count * pool.membersPerHost
            if members.count > room {
                self.sink.error(
                    .invalidValue,
                    "provider '\(definition.name)' has \(pool.hosts.count) host(s) for \(pool.membersPerHost) member(s) each, but \(members.count) members are placed on it (\(members.map(\.description).joined(separator: ", "))); add hosts or raise members_per_host",
                    at: definition.location)
            }
        }
    }

    private mutating func parameter(_ name: String, _ candidates: [Candidate<ValueTemplate>], path: String) -> Parameter {
        let resolved = Self.resolve(candidates)
        let winner = candidates.last!
        if case .required = resolved.value, let location = winner.location {
            if !self.missingRequired.contains(where: { $0.name == name && $0.location == location }) {
                self.missingRequired.append((name, path, location))
            }
        }
        var secretID: SecretID?
        if case .secret = resolved.value, let secretPath = winner.secretPath { secretID = SecretID("\(secretPath).\(name)") }
        return Parameter(name: name, value: resolved, secretID: secretID)
    }

    /// One error naming every missing value, so the user supplies them all at once.
    private mutating func reportMissingRequired(environment: String?) {
        guard let first = self.missingRequired.first else { return }
        let names = self.missingRequired.map(\.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let file = environment.map { "environments/\($0).yml" } ?? "an environment file (--env NAME)"
        let plural = names.count == 1 ? "parameter" : "parameters"
        self.sink.error(
            .missingRequired,
            "missing required \(plural): \(names.joined(separator: ", ")); supply each with --set NAME=VALUE or in \(file)",
            at: first.location,
            notes: self.missingRequired.map { .init("'\($0.name)' is required here", at: $0.location) })
    }

    private static func add(
        _ entries: [ParameterEntry], _ name: String, _ layer: Layer, _ path: String, to candidates: inout [Candidate<ValueTemplate>]
    ) {
        guard let entry = entries.first(where: { $0.name == name }) else { return }
        candidates.append(Candidate(value: entry.value, location: entry.valueLocation, layer: layer, secretPath: path))
    }

    private static func resolve<Value>(_ candidates: [Candidate<Value>]) -> Resolved<Value> {
        let winner = candidates.last!
        return Resolved(
            value: winner.value, origin: Origin(layer: winner.layer, location: winner.location),
            overridden: candidates.dropLast().reversed().map { Origin(layer: $0.layer, location: $0.location) })
    }

    private static func orderedNames(_ lists: [[ParameterEntry]]) -> [String] {
        Self.orderedNames(lists.map { $0.map(\.name) })
    }

    private static func orderedNames(_ lists: [[String]]) -> [String] {
        var names: [String] = []
        for list in lists { for name in list where !names.contains(name) { names.append(name) } }
        return names
    }
}
