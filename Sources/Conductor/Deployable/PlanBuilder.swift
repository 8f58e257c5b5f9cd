import Foundation
import Mesh

/// Checks every reference and `after` of a merged deployable, builds the dependency graph,
/// refuses cycles, and expands each member's parameters into a `ResolutionPlan`.
struct PlanBuilder {
    typealias FileReader = @Sendable (String) -> String?

    private let deployable: Deployable
    private let readFile: FileReader
    private var sink = DiagnosticSink()
    private var edges: [DependencyEdge] = []
    private var secrets: [SecretID: SecretSpec] = [:]

    /// The member being planned, for edges (who waits) and error messages.
    private struct Consumer {
        var instance: String
        /// `web.app.db_host`
        var via: String
    }

    static func build(_ deployable: Deployable, readFile: @escaping FileReader) -> (ResolutionPlan?, [DeployableError]) {
        var builder = PlanBuilder(deployable: deployable, readFile: readFile)
        let plan = builder.build()
        return (plan, builder.sink.errors)
    }

    private init(deployable: Deployable, readFile: @escaping FileReader) {
        self.deployable = deployable
        self.readFile = readFile
    }

    private mutating func build() -> ResolutionPlan? {
        var members: [MemberPlan] = []
        for instance in self.deployable.instances {
            for fact in instance.publishes {
                if let service = fact.service, instance.service(service) == nil {
                    self.sink.error(
                        .unknownReference,
                        "fact '\(fact.name)' is published by service '\(service)', which instance '\(instance.name)' does not have\(Spelling.hint(for: service, among: instance.services.map(\.name)))",
                        at: fact.location)
                }
            }
            var scripts: [String: String] = [:]
            for service in instance.services { scripts[service.name] = self.script(of: service) }
            for member in instance.members {
                var services: [PlannedService] = []
                for service in instance.services {
                    var parameters: [PlannedParameter] = []
                    for parameter in service.parameters {
                        let consumer = Consumer(instance: instance.name, via: "\(instance.name).\(service.name).\(parameter.name)")
                        let value = self.expand(
                            parameter.value.value, member: member, context: instance, consumer: consumer,
                            secretID: parameter.secretID, stack: [consumer.via])
                        parameters.append(PlannedParameter(name: parameter.name, value: value))
                    }
                    let after = self.afterRequirements(service, of: instance)
                    services.append(PlannedService(
                        name: service.name, kind: service.kind, script: scripts[service.name] ?? "",
                        parameters: parameters, after: after))
                }
                members.append(MemberPlan(member: member, provider: instance.provider.value, services: services))
            }
        }

        var seen = Set<DependencyEdge>()
        let graph = DependencyGraph(instances: self.deployable.instances.map(\.name), edges: self.edges.filter { seen.insert($0).inserted })
        if let cycle = graph.findCycle() {
            let names = cycle.map(\.from) + [cycle.last!.to]
            self.sink.error(
                .cycle, "dependency cycle: \(names.joined(separator: " -> "))", at: cycle.first!.location,
                notes: cycle.map { .init($0.explanation, at: $0.location) })
        }
        guard self.sink.isEmpty, let order = graph.topologicalOrder() else { return nil }
        let ordered = order.flatMap { name in members.filter { $0.member.instance == name } }
        return ResolutionPlan(
            deployment: self.deployable.name, environment: self.deployable.environment, members: ordered,
            secrets: self.secrets, graph: graph, order: order, providers: self.deployable.providers)
    }

    private mutating func script(of service: Service) -> String {
        switch service.source {
        case .inline(let text):
            return text
        case .file(let path):
            let full = path.hasPrefix("/") ? path : (self.deployable.directory as NSString).appendingPathComponent(path)
            guard let text = self.readFile(full) else {
                let reason = UnreadableFile(path: full).map { ": \($0.reason)" } ?? ""
                self.sink.error(.fileNotReadable, "cannot read service file '\(path)' (looked at \(full))\(reason)", at: service.sourceLocation)
                return ""
            }
            return text
        }
    }

    // MARK: - after

    private mutating func afterRequirements(_ service: Service, of instance: Instance) -> Set<Requirement> {
        var requirements = Set<Requirement>()
        for item in service.after {
            let parts = item.value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let parsed = parts.count <= 2 ? Reference.parse(parts.count == 1 ? "\(parts[0]).x" : item.value, at: item.location) : nil
            guard let parsed else {
                self.sink.error(.invalidValue, "invalid 'after' entry '\(item.value)': expected INSTANCE or INSTANCE.SERVICE (INSTANCE[N] for one member)", at: item.location)
                continue
            }
            let targetName = parsed.instance == Reference.selfInstance ? instance.name : parsed.instance
            guard let target = self.deployable.instance(targetName) else {
                self.unknownInstance(parsed.instance, in: "after: \(item.value)", at: item.location)
                continue
            }
            let serviceNames: [String]
            if parts.count == 2 {
                guard target.service(parsed.path[0]) != nil else {
                    self.sink.error(
                        .unknownReference,
                        "after: \(item.value): instance '\(target.name)' has no service '\(parsed.path[0])'\(Spelling.hint(for: parsed.path[0], among: target.services.map(\.name)))\(Self.list(" its services are", target.services.map(\.name)))",
                        at: item.location)
                    continue
                }
                serviceNames = [parsed.path[0]]
            } else {
                serviceNames = target.services.map(\.name)
            }
            let members: [MemberID]
            switch parsed.selector {
            case .only, .all:
                members = target.members
            case .index(let index):
                guard let member = self.member(target, index: index, text: item.value, at: item.location) else { continue }
                members = [member]
            }
            for name in serviceNames {
                self.edges.append(DependencyEdge(
                    from: instance.name, to: target.name, kind: .after(service: name), via: "\(instance.name).\(service.name)",
                    location: item.location))
                for member in members { requirements.insert(.completion(member, service: name)) }
            }
        }
        return requirements
    }

    // MARK: - Expanding values

    private mutating func expand(
        _ template: ValueTemplate, member: MemberID, context: Instance, consumer: Consumer, secretID: SecretID?, stack: [String]
    ) -> PlannedValue {
        switch template {
        case .literal(let value):
            return .literal(value)
        case .required:
            return .literal(.null)  // reported by the merger
        case .secret(let spec):
            let id = secretID ?? SecretID(consumer.via)
            self.secrets[id] = spec
            return .secret(id)
        case .reference(let reference):
            return self.expand(reference, member: member, context: context, consumer: consumer, stack: stack) ?? .literal(.null)
        case .interpolated(let pieces):
            var parts: [PlannedValue] = []
            for piece in pieces {
                switch piece {
                case .text(let text):
                    parts.append(.literal(.string(text)))
                case .reference(let reference):
                    if reference.selector == .all {
                        self.sink.error(
                            .invalidValue,
                            "\(reference) is a list, so it must be the whole value, not part of a string",
                            at: reference.location)
                        continue
                    }
                    if let value = self.expand(reference, member: member, context: context, consumer: consumer, stack: stack) {
                        parts.append(value)
                    }
                }
            }
            return .concatenation(parts)
        case .list(let items):
            return .list(items.map { self.expand($0, member: member, context: context, consumer: consumer, secretID: secretID, stack: stack) })
        case .map(let map):
            return .map(map.mapValues { self.expand($0, member: member, context: context, consumer: consumer, secretID: secretID, stack: stack) })
        }
    }

    private mutating func expand(
        _ reference: Reference, member: MemberID, context: Instance, consumer: Consumer, stack: [String]
    ) -> PlannedValue? {
        let isSelf = reference.instance == Reference.selfInstance
        guard let target = isSelf ? context : self.deployable.instance(reference.instance) else {
            self.unknownInstance(reference.instance, in: reference.description, at: reference.location)
            return nil
        }
        let members: [MemberID]
        switch reference.selector {
        case .only:
            if isSelf {
                members = [member]
            } else if target.count.value == 1 {
                members = target.members
            } else {
                self.sink.error(
                    .ambiguousReference,
                    "\(reference): instance '\(target.name)' has \(target.count.value) members; write \(target.name)[0].\(reference.path.joined(separator: ".")) for one, or \(target.name)[*].\(reference.path.joined(separator: ".")) for all of them as a list",
                    at: reference.location)
                return nil
            }
        case .index(let index):
            guard let one = self.member(target, index: index, text: reference.description, at: reference.location) else { return nil }
            members = [one]
        case .all:
            members = target.members
        }
        var values: [PlannedValue] = []
        for source in members {
            guard let value = self.expand(path: reference.path, of: target, source: source, reference: reference, consumer: consumer, stack: stack) else {
                return nil
            }
            values.append(value)
        }
        return reference.selector == .all ? .list(values) : values.first
    }

    private mutating func expand(
        path: [String], of target: Instance, source: MemberID, reference: Reference, consumer: Consumer, stack: [String]
    ) -> PlannedValue? {
        let head = path[0]
        if let service = target.service(head) {
            guard path.count == 2 else {
                let message = path.count == 1
                    ? "\(reference) names service '\(target.name).\(head)': reference one of its parameters, or wait for it with after: [\(target.name).\(head)]"
                    : "\(reference): a service parameter is INSTANCE.SERVICE.PARAMETER, one level deep"
                self.sink.error(.invalidValue, message, at: reference.location)
                return nil
            }
            guard let parameter = service.parameter(path[1]) else {
                let names = service.parameters.map(\.name)
                self.sink.error(
                    .unknownReference,
                    "\(reference): service '\(target.name).\(head)' has no parameter '\(path[1])'\(Spelling.hint(for: path[1], among: names))\(Self.list(" its parameters are", names))",
                    at: reference.location)
                return nil
            }
            let key = "\(target.name).\(head).\(path[1])"
            if stack.contains(key) {
                let start = stack.firstIndex(of: key)!
                self.sink.error(
                    .cycle, "parameters refer to each other in a cycle: \((stack[start...] + [key]).joined(separator: " -> "))",
                    at: reference.location)
                return nil
            }
            return self.expand(
                parameter.value.value, member: source, context: target, consumer: consumer, secretID: parameter.secretID,
                stack: stack + [key])
        }
        let factPath = path.joined(separator: ".")
        if MeshSchema.host.property(named: head) != nil || MeshSchema.host.property(named: factPath) != nil {
            self.edges.append(DependencyEdge(from: consumer.instance, to: target.name, kind: .fact(factPath), via: consumer.via, location: reference.location))
            return .fact(source, factPath)
        }
        let publishedName = head == "custom" && path.count > 1 ? path[1] : head
        if let published = target.publishes.first(where: { $0.name == publishedName }) {
            let custom = head == "custom" ? factPath : "custom.\(factPath)"
            let kind: DependencyEdge.Kind = published.service.map { .publishedFact(custom, service: $0) } ?? .fact(custom)
            self.edges.append(DependencyEdge(from: consumer.instance, to: target.name, kind: kind, via: consumer.via, location: reference.location))
            return .fact(source, custom)
        }
        let facts = MeshSchema.host.properties.map(\.name)
        let published = target.publishes.map(\.name)
        let services = target.services.map(\.name)
        self.sink.error(
            .unknownReference,
            "\(reference): instance '\(target.name)' has no fact or service '\(head)'\(Spelling.hint(for: head, among: facts + published + services)); "
                + "host facts: \(facts.joined(separator: ", "))"
                + (published.isEmpty ? "; it publishes no custom facts" : "; it publishes: \(published.joined(separator: ", "))")
                + (services.isEmpty ? "" : "; its services: \(services.joined(separator: ", "))"),
            at: reference.location)
        return nil
    }

    private mutating func member(_ target: Instance, index: Int, text: String, at location: FileLocation) -> MemberID? {
        guard index < target.count.value else {
            self.sink.error(
                .unknownReference,
                "\(text): instance '\(target.name)' has \(target.count.value) member\(target.count.value == 1 ? "" : "s") (index 0\(target.count.value > 1 ? "…\(target.count.value - 1)" : "")), not \(index + 1)",
                at: location)
            return nil
        }
        return target.members[index]
    }

    private mutating func unknownInstance(_ name: String, in text: String, at location: FileLocation) {
        let names = self.deployable.instances.map(\.name)
        self.sink.error(
            .unknownReference,
            "\(text): no instance named '\(name)'\(Spelling.hint(for: name, among: names + [Reference.selfInstance]))\(Self.list(" instances are", names))",
            at: location)
    }

    private static func list(_ prefix: String, _ names: [String]) -> String {
        names.isEmpty ? "" : ";\(prefix): \(names.joined(separator: ", "))"
    }
}
