import Foundation

/// A query predicate in QMF's list grammar, carried as JSON:
///
///     ["and", ["eq", "os", ["quote", "linux"]], ["ge", "memory_total", ["quote", 1000000]]]
///
/// A bare string operand names a property (a dotted path into nested maps); a literal is
/// `["quote", value]`. Numbers, booleans and null given bare are read as literals too, and
/// written back quoted. Evaluation never fails: a missing property or a type mismatch makes
/// the comparison false, so `["not", ["eq", "missing", ["quote", 1]]]` is true.
/// docs/protocol.md has the full grammar and semantics.
public indirect enum Predicate: Hashable, Sendable {
    case compare(Comparison, Operand, Operand)
    /// True when the path resolves (to any value, null included).
    case exists(String)
    /// True when the operand is a string the regular expression matches anywhere in.
    case reMatch(Operand, RegexPattern)
    case and([Predicate])
    case or([Predicate])
    case not(Predicate)

    public enum Comparison: String, Hashable, Sendable, CaseIterable {
        case eq, ne, lt, le, gt, ge
    }

    public enum Operand: Hashable, Sendable {
        case property(String)
        case literal(MeshValue)
    }

    /// A regular expression compiled once, when the predicate is parsed.
    public struct RegexPattern: Hashable, @unchecked Sendable {
        // @unchecked: NSRegularExpression is immutable after init and documented thread-safe.
        public let pattern: String
        private let compiled: NSRegularExpression

        public init(_ pattern: String) throws(PredicateError) {
            do {
                self.compiled = try NSRegularExpression(pattern: pattern)
            } catch {
                throw PredicateError("regular expression '\(pattern)' is invalid")
            }
            self.pattern = pattern
        }

        public func matches(_ string: String) -> Bool {
            let range = NSRange(string.startIndex..<string.endIndex, in: string)
            return self.compiled.firstMatch(in: string, range: range) != nil
        }

        public static func == (lhs: RegexPattern, rhs: RegexPattern) -> Bool { lhs.pattern == rhs.pattern }
        public func hash(into hasher: inout Hasher) { hasher.combine(self.pattern) }
    }
}

/// Why a predicate could not be read. `location` is where in the JSON list the problem is
/// (`[1][2]`), or which clause of the CLI form.
public struct PredicateError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public var location: String

    public init(_ reason: String, at location: String = "") {
        self.reason = reason
        self.location = location
    }

    public var description: String {
        self.location.isEmpty ? self.reason : "\(self.reason) at \(self.location)"
    }

    func located(_ location: String) -> PredicateError {
        PredicateError(self.reason, at: self.location.isEmpty ? location : self.location)
    }
}

// MARK: - Reading the list grammar

extension Predicate {
    /// Parses the JSON list form.
    public init(json: String) throws(PredicateError) {
        let value: MeshValue
        do {
            value = try MeshValue(json: json)
        } catch {
            throw PredicateError("predicate is not valid JSON")
        }
        try self.init(value: value)
    }

    /// Parses the list form already read into a MeshValue (a query's `_where`).
    public init(value: MeshValue) throws(PredicateError) {
        self = try Self.parse(value, at: "")
    }

    /// Parses either form: JSON when the text starts with `[`, else the CLI form.
    public static func parse(_ text: String) throws(PredicateError) -> Predicate {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("[") { return try Predicate(json: trimmed) }
        return try Predicate.parse(cli: trimmed)
    }

    private static func parse(_ value: MeshValue, at location: String) throws(PredicateError) -> Predicate {
        guard case .list(let list) = value else {
            throw PredicateError("expected a list like [\"eq\", \"os\", [\"quote\", \"linux\"]], found \(value.json)", at: where_(location))
        }
        guard let first = list.first else {
            throw PredicateError("expression is an empty list", at: where_(location))
        }
        guard case .string(let name) = first else {
            throw PredicateError("operator must be a string, found \(first.json)", at: where_(location))
        }
        let operands = Array(list.dropFirst())
        func arity(_ n: Int) throws(PredicateError) {
            guard operands.count == n else {
                let noun = n == 1 ? "operand" : "operands"
                throw PredicateError("'\(name)' takes \(n) \(noun), found \(operands.count)", at: where_(location))
            }
        }
        func operand(_ index: Int) throws(PredicateError) -> Operand {
            try Self.parseOperand(operands[index], at: "\(location)[\(index + 1)]")
        }
        if let comparison = Comparison(rawValue: name) {
            try arity(2)
            return .compare(comparison, try operand(0), try operand(1))
        }
        switch name {
        case "exists":
            try arity(1)
            guard case .property(let path) = try operand(0) else {
                throw PredicateError("'exists' takes a property name, not a literal", at: "\(location)[1]")
            }
            return .exists(path)
        case "re_match":
            try arity(2)
            guard case .literal(.string(let pattern)) = try operand(1) else {
                throw PredicateError("'re_match' takes a quoted string pattern as its second operand", at: "\(location)[2]")
            }
            do {
                return .reMatch(try operand(0), try RegexPattern(pattern))
            } catch {
                throw error.located("\(location)[2]")
            }
        case "and", "or":
            guard !operands.isEmpty else {
                throw PredicateError("'\(name)' needs at least one operand", at: where_(location))
            }
            var inner: [Predicate] = []
            for (index, operand) in operands.enumerated() {
                inner.append(try parse(operand, at: "\(location)[\(index + 1)]"))
            }
            return name == "and" ? .and(inner) : .or(inner)
        case "not":
            try arity(1)
            return .not(try parse(operands[0], at: "\(location)[1]"))
        default:
            throw PredicateError("operator '\(name)' is unknown (expected one of eq ne lt le gt ge re_match exists and or not)", at: where_(location))
        }
    }

    private static func parseOperand(_ value: MeshValue, at location: String) throws(PredicateError) -> Operand {
        switch value {
        case .string(let name):
            guard !name.isEmpty else { throw PredicateError("property name is empty", at: location) }
            return .property(name)
        case .list(let list):
            guard list.count == 2, list[0] == .string("quote") else {
                throw PredicateError("operand must be a property name or [\"quote\", value], found \(value.json)", at: location)
            }
            return .literal(list[1])
        case .map:
            throw PredicateError("operand must be a property name or [\"quote\", value], found a map", at: location)
        case .null, .bool, .int, .double:
            return .literal(value)
        }
    }

    private static func where_(_ location: String) -> String {
        location.isEmpty ? "the top level" : location
    }
}

// MARK: - Writing the list grammar

extension Predicate {
    /// The list form as a MeshValue (what goes into `_where`).
    public var listValue: MeshValue {
        func operand(_ operand: Operand) -> MeshValue {
            switch operand {
            case .property(let name): return .string(name)
            case .literal(let value): return .list([.string("quote"), value])
            }
        }
        switch self {
        case .compare(let comparison, let lhs, let rhs):
            return .list([.string(comparison.rawValue), operand(lhs), operand(rhs)])
        case .exists(let path):
            return .list([.string("exists"), .string(path)])
        case .reMatch(let lhs, let regex):
            return .list([.string("re_match"), operand(lhs), .list([.string("quote"), .string(regex.pattern)])])
        case .and(let inner):
            return .list([.string("and")] + inner.map(\.listValue))
        case .or(let inner):
            return .list([.string("or")] + inner.map(\.listValue))
        case .not(let inner):
            return .list([.string("not"), inner.listValue])
        }
    }

    /// The list form as compact JSON.
    public var json: String { self.listValue.json }
}

extension Predicate: Codable {
    public init(from decoder: any Decoder) throws {
        let value = try MeshValue(from: decoder)
        do {
            self = try Predicate(value: value)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        try self.listValue.encode(to: encoder)
    }
}

extension Predicate: CustomStringConvertible {
    public var description: String { self.json }
}

// MARK: - Evaluation

extension Predicate {
    /// Whether `object` (a map of properties) satisfies the predicate. Never fails.
    public func matches(_ object: MeshValue) -> Bool {
        switch self {
        case .compare(let comparison, let lhs, let rhs):
            guard let left = Self.resolve(lhs, in: object), let right = Self.resolve(rhs, in: object) else {
                return false
            }
            return Self.compare(comparison, left, right)
        case .exists(let path):
            return object[path: path] != nil
        case .reMatch(let operand, let regex):
            guard case .string(let string)? = Self.resolve(operand, in: object) else { return false }
            return regex.matches(string)
        case .and(let inner):
            return inner.allSatisfy { $0.matches(object) }
        case .or(let inner):
            return inner.contains { $0.matches(object) }
        case .not(let inner):
            return !inner.matches(object)
        }
    }

    private static func resolve(_ operand: Operand, in object: MeshValue) -> MeshValue? {
        switch operand {
        case .property(let path): return object[path: path]
        case .literal(let value): return value
        }
    }

    private static func compare(_ comparison: Comparison, _ left: MeshValue, _ right: MeshValue) -> Bool {
        let order: Ordering?
        switch (left, right) {
        case (.int(let a), .int(let b)):
            order = a < b ? .less : (a == b ? .equal : .greater)
        case (.int, .double), (.double, .int), (.double, .double):
            let a = left.doubleValue!, b = right.doubleValue!
            // NaN is unordered and unequal to everything, itself included.
            order = a < b ? .less : (a == b ? .equal : (a > b ? .greater : nil))
        case (.string(let a), .string(let b)):
            order = a == b ? .equal : (MeshValue.codePointOrder(a, b) ? .less : .greater)
        case (.null, .null), (.bool, .bool), (.list, .list), (.map, .map):
            // Only equality is defined for these.
            switch comparison {
            case .eq: return left == right
            case .ne: return left != right
            default: return false
            }
        default:
            return false  // different types: no comparison holds
        }
        guard let order else { return comparison == .ne }
        switch comparison {
        case .eq: return order == .equal
        case .ne: return order != .equal
        case .lt: return order == .less
        case .le: return order != .greater
        case .gt: return order == .greater
        case .ge: return order != .less
        }
    }

    private enum Ordering { case less, equal, greater }
}
