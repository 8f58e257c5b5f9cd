import Mesh

/// A reference as written: `${db.ipaddress}`, `${web[1].app.port}`, `${web[*].ipaddress}`,
/// `${self.ipaddress}`. Whether `path` names a fact or a service parameter is decided by
/// validation, which knows the instance's services.
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    public enum Selector: Hashable, Sendable {
        /// `db`: the instance's only member (an error when it has more than one).
        case only
        /// `web[1]`
        case index(Int)
        /// `web[*]`: every member, giving a list.
        case all
    }

    /// `self` means the member the value is computed for.
    public var instance: String
    public var selector: Selector
    public var path: [String]
    public var location: FileLocation

    public static let selfInstance = "self"

    public var description: String {
        let selector: String
        switch self.selector {
        case .only: selector = ""
        case .index(let index): selector = "[\(index)]"
        case .all: selector = "[*]"
        }
        return "${\(self.instance)\(selector).\(self.path.joined(separator: "."))}"
    }

    /// Parses the text between `${` and `}`; nil when it is not a reference's shape.
    static func parse(_ body: String, at location: FileLocation) -> Reference? {
        var parts = body.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        var head = parts.removeFirst()
        var selector = Selector.only
        if let open = head.firstIndex(of: "["), head.hasSuffix("]") {
            let inside = head[head.index(after: open)..<head.index(before: head.endIndex)]
            if inside == "*" {
                selector = .all
            } else if let index = Int(inside), index >= 0 {
                selector = .index(index)
            } else {
                return nil
            }
            head = String(head[..<open])
        }
        guard Names.isValid(head), parts.allSatisfy({ Names.isValid($0) }) else { return nil }
        return Reference(instance: head, selector: selector, path: parts, location: location)
    }
}

/// A parameter's value as written, before anything is resolved.
public indirect enum ValueTemplate: Hashable, Sendable {
    case literal(MeshValue)
    /// The whole value is one reference, so it keeps the source's type (a port stays an
    /// integer, `${web[*].ipaddress}` is a list).
    case reference(Reference)
    /// A string with references inside: `http://${db.ipaddress}:${db.mysql.port}/`.
    case interpolated([Piece])
    case list([ValueTemplate])
    case map([String: ValueTemplate])
    /// Generated once per deployment and kept by the state store.
    case secret(SecretSpec)
    /// The user must supply it: `--set NAME=VALUE` or the environment file.
    case required(description: String?)

    public enum Piece: Hashable, Sendable {
        case text(String)
        case reference(Reference)
    }

    /// Every reference inside, in order.
    public var references: [Reference] {
        switch self {
        case .literal, .secret, .required: []
        case .reference(let reference): [reference]
        case .interpolated(let pieces):
            pieces.compactMap { if case .reference(let reference) = $0 { reference } else { nil } }
        case .list(let items): items.flatMap(\.references)
        case .map(let map): map.keys.sorted().flatMap { map[$0]!.references }
        }
    }

    /// Printable, secrets masked.
    public var description: String {
        switch self {
        case .literal(let value):
            if case .string(let text) = value { return text }
            return value.json
        case .reference(let reference): return reference.description
        case .interpolated(let pieces):
            return pieces.map {
                switch $0 {
                case .text(let text): text.replacingOccurrences(of: "${", with: "$${")
                case .reference(let reference): reference.description
                }
            }.joined()
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .map(let map): return "{" + map.keys.sorted().map { "\($0): \(map[$0]!.description)" }.joined(separator: ", ") + "}"
        case .secret(let spec): return "<secret, \(spec.length) characters>"
        case .required: return "<required>"
        }
    }
}

/// `secret: {length: 24}`: letters and digits, generated with the system's secure generator.
public struct SecretSpec: Hashable, Sendable, Codable {
    public static let defaultLength = 32
    public static let lengthRange = 8...1024
    public var length: Int

    public init(length: Int = SecretSpec.defaultLength) { self.length = length }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

    public func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return self.generate(using: &generator)
    }

    public func generate(using generator: inout some RandomNumberGenerator) -> String {
        String((0..<self.length).map { _ in Self.alphabet.randomElement(using: &generator)! })
    }
}

/// A secret is named by where it was declared (`db.mysql.password`), so every member and
/// every service that inherits it gets the same value.
public struct SecretID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { self.rawValue }
    public static func < (lhs: SecretID, rhs: SecretID) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension ValueTemplate {
    /// Reads a parameter value: `${…}` references in strings, `{ref: …}`, `{secret: …}`,
    /// `{required: true}`; anything else is a literal.
    static func parse(_ node: ConfigNode, sink: inout DiagnosticSink) -> ValueTemplate {
        switch node.content {
        case .scalar(let scalar):
            guard scalar.type == .string, scalar.text.contains("$") else { return .literal(node.meshValue) }
            return Self.parseString(scalar.text, node: node, sink: &sink)
        case .list(let items):
            let parsed = items.map { Self.parse($0, sink: &sink) }
            if parsed.allSatisfy({ $0.references.isEmpty && !$0.isSpecial }) { return .literal(node.meshValue) }
            return .list(parsed)
        case .map(let entries):
            if entries.count == 1 || entries.contains(where: { ["secret", "required", "ref"].contains($0.key) }) {
                if let special = Self.parseSpecial(entries, node: node, sink: &sink) { return special }
            }
            var map: [String: ValueTemplate] = [:]
            for entry in entries { map[entry.key] = Self.parse(entry.value, sink: &sink) }
            if map.values.allSatisfy({ $0.references.isEmpty && !$0.isSpecial }) { return .literal(node.meshValue) }
            return .map(map)
        }
    }

    private var isSpecial: Bool {
        switch self {
        case .secret, .required: true
        case .list(let items): items.contains(where: \.isSpecial)
        case .map(let map): map.values.contains(where: \.isSpecial)
        default: false
        }
    }

    private static func parseSpecial(_ entries: [ConfigNode.Entry], node: ConfigNode, sink: inout DiagnosticSink) -> ValueTemplate? {
        let keys = Set(entries.map(\.key))
        if keys.contains("secret") {
            var spec = SecretSpec()
            for entry in entries where entry.key != "secret" {
                sink.error(.unknownKey, "unknown key '\(entry.key)' next to 'secret'; write secret: {length: N}", at: entry.keyLocation)
            }
            let value = entries.first { $0.key == "secret" }!.value
            switch value.content {
            case .scalar(let scalar) where scalar.type == .bool && value.meshValue == .bool(true):
                break
            case .scalar(let scalar) where scalar.type == .null:
                break
            case .map(let options):
                for option in options {
                    guard option.key == "length" else {
                        sink.error(.unknownKey, "unknown key '\(option.key)' in secret\(Spelling.hint(for: option.key, among: ["length"])); expected: length", at: option.keyLocation)
                        continue
                    }
                    guard case .int(let length) = option.value.meshValue, SecretSpec.lengthRange.contains(Int(length)) else {
                        sink.error(.invalidValue, "secret length must be an integer from \(SecretSpec.lengthRange.lowerBound) to \(SecretSpec.lengthRange.upperBound), got \(option.value.kindName == "an integer" ? option.value.meshValue.json : option.value.kindName)", at: option.value.location)
                        continue
                    }
                    spec.length = Int(length)
                }
            default:
                sink.error(.typeMismatch, "secret takes a map like {length: 24} (or true), got \(value.kindName)", at: value.location)
            }
            return .secret(spec)
        }
        if keys.contains("required") {
            var description: String?
            for entry in entries {
                switch entry.key {
                case "required":
                    if entry.value.meshValue != .bool(true) {
                        sink.error(.invalidValue, "'required' can only be true; give a default value instead of required: false", at: entry.value.location)
                    }
                case "description":
                    if case .string(let text) = entry.value.meshValue { description = text } else {
                        sink.error(.typeMismatch, "description must be a string, got \(entry.value.kindName)", at: entry.value.location)
                    }
                default:
                    sink.error(.unknownKey, "unknown key '\(entry.key)' next to 'required'\(Spelling.hint(for: entry.key, among: ["description"])); expected: description", at: entry.keyLocation)
                }
            }
            return .required(description: description)
        }
        if keys.contains("ref"), let entry = entries.first(where: { $0.key == "ref" }) {
            if entries.count > 1 {
                sink.error(.unknownKey, "a {ref: …} value takes nothing else", at: entries.first { $0.key != "ref" }!.keyLocation)
            }
            guard case .scalar(let scalar) = entry.value.content, scalar.type == .string else {
                sink.error(.typeMismatch, "ref must be a string like db.ipaddress, got \(entry.value.kindName)", at: entry.value.location)
                return .literal(.null)
            }
            guard let reference = Reference.parse(scalar.text, at: entry.value.location) else {
                sink.error(.invalidValue, "invalid reference '\(scalar.text)': expected INSTANCE.FACT, INSTANCE.SERVICE.PARAMETER, INSTANCE[N].… or INSTANCE[*].…", at: entry.value.location)
                return .literal(.null)
            }
            return .reference(reference)
        }
        return nil
    }

    /// `$${` is a literal `${`; `${…}` is a reference; a `${` without `}` is an error.
    private static func parseString(_ text: String, node: ConfigNode, sink: inout DiagnosticSink) -> ValueTemplate {
        var pieces: [Piece] = []
        var literal = ""
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            if characters[index] == "$", index + 2 < characters.count, characters[index + 1] == "$", characters[index + 2] == "{" {
                literal += "${"
                index += 3
                continue
            }
            guard characters[index] == "$", index + 1 < characters.count, characters[index + 1] == "{" else {
                literal.append(characters[index])
                index += 1
                continue
            }
            let location = node.location(ofOffset: index)
            guard let close = characters[(index + 2)...].firstIndex(of: "}") else {
                sink.error(.invalidValue, "'${' without a closing '}' (write $${ for a literal ${)", at: location)
                return .literal(node.meshValue)
            }
            let body = String(characters[(index + 2)..<close]).trimmingCharacters(in: .whitespaces)
            guard let reference = Reference.parse(body, at: location) else {
                sink.error(.invalidValue, "invalid reference '${\(body)}': expected INSTANCE.FACT, INSTANCE.SERVICE.PARAMETER, INSTANCE[N].… or INSTANCE[*].…", at: location)
                return .literal(node.meshValue)
            }
            if !literal.isEmpty { pieces.append(.text(literal)) }
            literal = ""
            pieces.append(.reference(reference))
            index = close + 1
        }
        if !literal.isEmpty { pieces.append(.text(literal)) }
        if pieces.count == 1, case .reference(let reference) = pieces[0] { return .reference(reference) }
        if !pieces.contains(where: { if case .reference = $0 { true } else { false } }) { return .literal(.string(literal)) }
        return .interpolated(pieces)
    }
}
