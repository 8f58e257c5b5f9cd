import Foundation
import Mesh
import Yams

/// A YAML document as a tree whose every node knows its file, line and column. Built from
/// Yams' node API (`compose`), which keeps marks that its Codable decoding throws away.
struct ConfigNode: Sendable {
    enum ScalarType: Sendable, Equatable { case string, int, float, bool, null }

    struct Scalar: Sendable {
        var text: String
        var type: ScalarType
        /// Plain or quoted on one line: a column offset inside `text` is a column in the file.
        var columnsMatchFile: Bool
        /// Quoted scalars start one column after their mark.
        var quoteOffset: Int
    }

    struct Entry: Sendable {
        var key: String
        var keyLocation: FileLocation
        var value: ConfigNode
    }

    enum Content: Sendable {
        case scalar(Scalar)
        case map([Entry])
        case list([ConfigNode])
    }

    var content: Content
    var location: FileLocation

    var kindName: String {
        switch self.content {
        case .scalar(let scalar):
            switch scalar.type {
            case .string: "a string"
            case .int: "an integer"
            case .float: "a number"
            case .bool: "a boolean"
            case .null: "null"
            }
        case .map: "a map"
        case .list: "a list"
        }
    }

    var entries: [Entry]? {
        if case .map(let entries) = self.content { return entries }
        return nil
    }

    var scalar: Scalar? {
        if case .scalar(let scalar) = self.content { return scalar }
        return nil
    }

    /// The location of column `offset` (0-based, in characters) inside this scalar's text,
    /// when the text is written on one line; else the scalar's start.
    func location(ofOffset offset: Int) -> FileLocation {
        guard let scalar, scalar.columnsMatchFile else { return self.location }
        return self.location.advanced(by: scalar.quoteOffset + offset)
    }

    /// The value as plain data (no references interpreted).
    var meshValue: MeshValue {
        switch self.content {
        case .scalar(let scalar):
            switch scalar.type {
            case .string: return .string(scalar.text)
            case .int: return Int64(scalar.text.replacingOccurrences(of: "_", with: "")).map(MeshValue.int) ?? .string(scalar.text)
            case .float: return Double(scalar.text).map(MeshValue.double) ?? .string(scalar.text)
            case .bool: return .bool(["true", "yes", "on", "y"].contains(scalar.text.lowercased()))
            case .null: return .null
            }
        case .map(let entries):
            return .map(Dictionary(entries.map { ($0.key, $0.value.meshValue) }, uniquingKeysWith: { _, last in last }))
        case .list(let items):
            return .list(items.map(\.meshValue))
        }
    }
}

extension ConfigNode {
    /// Parses one YAML document. An empty file is an empty map. Syntax errors, non-scalar
    /// keys and duplicate keys are reported with their location.
    static func parse(yaml: String, file: String) -> (ConfigNode?, [DeployableError]) {
        // Before composing: Yams and `convert` recurse once per level and copy every alias.
        if let tooLarge = YAMLShape.check(yaml: yaml, file: file) { return (nil, [tooLarge]) }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            return (nil, [Self.syntaxError(error, file: file)])
        } catch {
            return (nil, [DeployableError(.syntax, "cannot parse YAML: \(error)", at: FileLocation(file: file, line: 1, column: 1))])
        }
        guard let root else {
            return (ConfigNode(content: .map([]), location: FileLocation(file: file, line: 1, column: 1)), [])
        }
        var errors: [DeployableError] = []
        let node = Self.convert(root, file: file, errors: &errors)
        return (node, errors)
    }

    private static func syntaxError(_ error: YamlError, file: String) -> DeployableError {
        func at(_ mark: Mark) -> FileLocation { FileLocation(file: file, line: mark.line, column: mark.column) }
        switch error {
        case .scanner(let context?, let problem, let mark, _)
        where context.text == "while scanning a quoted scalar" && Self.unclosedQuoteNote(problem) != nil:
            // libyaml reads an unclosed quote on to the end of the file and blames that
            // place; the mistake is where the quote opens.
            return DeployableError(
                .syntax, "invalid YAML: quoted string is never closed", at: at(context.mark),
                notes: [.init(Self.unclosedQuoteNote(problem) ?? problem, at: at(mark))])
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return DeployableError(.syntax, "invalid YAML: \(prefix)\(problem)", at: at(mark))
        case .reader(let problem, _, _, _):
            return DeployableError(.syntax, "cannot read YAML: \(problem)", at: FileLocation(file: file, line: 1, column: 1))
        default:
            return DeployableError(.syntax, "invalid YAML: \(error)", at: FileLocation(file: file, line: 1, column: 1))
        }
    }

    /// Where libyaml gave up on a quoted string that is not closed, as a note; nil for other problems.
    private static func unclosedQuoteNote(_ problem: String) -> String? {
        switch problem {
        case "found unexpected end of stream": "the file ends here without the closing quote"
        case "found unexpected document indicator": "a document marker ('---' or '...') comes here before the closing quote"
        default: nil
        }
    }

    private static func convert(_ node: Node, file: String, errors: inout [DeployableError]) -> ConfigNode {
        let location = node.mark.map { FileLocation(file: file, line: $0.line, column: $0.column) }
            ?? FileLocation(file: file, line: 1, column: 1)
        switch node {
        case .scalar(let scalar):
            return ConfigNode(content: .scalar(Self.scalar(scalar, node: node)), location: location)
        case .sequence(let sequence):
            return ConfigNode(content: .list(sequence.map { Self.convert($0, file: file, errors: &errors) }), location: location)
        case .mapping(let mapping):
            var entries: [Entry] = []
            var firstSeen: [String: FileLocation] = [:]
            for (keyNode, valueNode) in mapping {
                let keyLocation = keyNode.mark.map { FileLocation(file: file, line: $0.line, column: $0.column) } ?? location
                guard case .scalar(let keyScalar) = keyNode else {
                    errors.append(DeployableError(.typeMismatch, "a key must be a plain name, not a map or list", at: keyLocation))
                    continue
                }
                let key = keyScalar.string
                if let first = firstSeen[key] {
                    errors.append(DeployableError(
                        .duplicateName, "duplicate key '\(key)'", at: keyLocation,
                        notes: [.init("first defined here", at: first)]))
                    // Dropped, but read: its own duplicates are mistakes to fix in the same pass.
                    _ = Self.convert(valueNode, file: file, errors: &errors)
                    continue
                }
                firstSeen[key] = keyLocation
                entries.append(Entry(key: key, keyLocation: keyLocation, value: Self.convert(valueNode, file: file, errors: &errors)))
            }
            return ConfigNode(content: .map(entries), location: location)
        }
    }

    private static func scalar(_ scalar: Node.Scalar, node: Node) -> Scalar {
        let text = scalar.string
        let oneLine = !text.contains("\n")
        switch scalar.style {
        case .singleQuoted, .doubleQuoted:
            // Escapes make offsets approximate in double quotes; close enough to point at the reference.
            return Scalar(text: text, type: .string, columnsMatchFile: oneLine, quoteOffset: 1)
        case .literal, .folded:
            return Scalar(text: text, type: .string, columnsMatchFile: false, quoteOffset: 0)
        default:
            let type: ScalarType =
                node.null != nil ? .null
                : node.bool != nil ? .bool
                : node.int != nil ? .int
                : node.float != nil ? .float
                : .string
            return Scalar(text: text, type: type, columnsMatchFile: oneLine, quoteOffset: 0)
        }
    }
}
