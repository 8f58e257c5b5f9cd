internal import CYaml

/// Bounds on a YAML document's shape, checked on libyaml's event stream before anything
/// recurses over the document. Yams' composer and `ConfigNode.convert` recurse once per
/// level, so a few thousand nested maps overflow the stack; and `convert` copies what an
/// alias names, so nine lines of aliases ("billion laughs") expand to 387 million nodes.
/// libyaml's parser keeps its own stacks, so reading its events is safe at any depth.
struct YAMLShape {
    /// Maps and lists inside each other, counting what aliases put inside them. A deployable
    /// needs about ten (`instances.db.services.s.parameters.p.{secret: {length}}`).
    static let maximumDepth = 64
    /// Nodes that aliases (`*name`) produce in all, each alias counting its anchor's whole value.
    static let maximumAliasNodes = 10_000

    /// The first place the document goes past a limit, or nil. Syntax errors are left to Yams,
    /// which meets them at the same event, no deeper than the limit.
    static func check(yaml: String, file: String) -> DeployableError? {
        guard !yaml.isEmpty else { return nil }
        var shape = YAMLShape()
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        var text = yaml
        return text.withUTF8 { bytes -> DeployableError? in
            yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let location = FileLocation(file: file, line: event.start_mark.line + 1, column: event.start_mark.column + 1)
                let problem: String?
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    problem = shape.scalarRead(anchor: Self.string(event.data.scalar.anchor))
                case YAML_SEQUENCE_START_EVENT:
                    problem = shape.collectionStarted(anchor: Self.string(event.data.sequence_start.anchor))
                case YAML_MAPPING_START_EVENT:
                    problem = shape.collectionStarted(anchor: Self.string(event.data.mapping_start.anchor))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    problem = shape.collectionEnded()
                case YAML_ALIAS_EVENT:
                    problem = Self.string(event.data.alias.anchor).flatMap { shape.aliasRead($0) }
                default:
                    problem = nil
                }
                if let problem { return DeployableError(.limitExceeded, problem, at: location) }
            }
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    // MARK: - The count, without I/O

    /// A value's size: its nodes, and how many collections deep it goes (0 for a scalar).
    struct Size: Equatable {
        var nodes: Int
        var height: Int
    }

    private struct OpenCollection {
        var anchor: String?
        var size = Size(nodes: 1, height: 1)
    }

    private var open: [OpenCollection] = []
    private var anchors: [String: Size] = [:]
    private var aliasNodes = 0

    /// The message when this collection is one level too deep.
    mutating func collectionStarted(anchor: String?) -> String? {
        guard self.open.count < Self.maximumDepth else { return Self.tooDeep }
        self.open.append(OpenCollection(anchor: anchor))
        return nil
    }

    mutating func collectionEnded() -> String? {
        guard let closed = self.open.popLast() else { return nil }
        if let anchor = closed.anchor { self.anchors[anchor] = closed.size }
        self.add(closed.size)
        return nil
    }

    mutating func scalarRead(anchor: String?) -> String? {
        let size = Size(nodes: 1, height: 0)
        if let anchor { self.anchors[anchor] = size }
        self.add(size)
        return nil
    }

    /// An alias stands for a copy of its anchor's value, at this depth. An unknown anchor is
    /// Yams' to report ("found undefined alias").
    mutating func aliasRead(_ anchor: String) -> String? {
        guard let size = self.anchors[anchor] else { return nil }
        guard self.open.count + size.height <= Self.maximumDepth else { return Self.tooDeep + " once aliases are expanded" }
        self.aliasNodes += size.nodes
        guard self.aliasNodes <= Self.maximumAliasNodes else {
            return "aliases expand to more than \(Self.maximumAliasNodes) nodes (the limit); write the shared values out, or share them at fewer levels"
        }
        self.add(size)
        return nil
    }

    private mutating func add(_ child: Size) {
        guard !self.open.isEmpty else { return }
        self.open[self.open.count - 1].size.nodes += child.nodes
        self.open[self.open.count - 1].size.height = max(self.open[self.open.count - 1].size.height, child.height + 1)
    }

    private static let tooDeep = "maps and lists are nested more than \(maximumDepth) levels deep"
}
