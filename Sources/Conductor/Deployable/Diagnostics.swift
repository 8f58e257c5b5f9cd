import Mesh

/// Where something was written: a file, a 1-based line and a 1-based column.
public struct FileLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(self.file):\(self.line):\(self.column)" }

    public static func < (lhs: FileLocation, rhs: FileLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }

    /// The same line, `offset` columns further (a reference inside a scalar).
    func advanced(by offset: Int) -> FileLocation {
        FileLocation(file: self.file, line: self.line, column: self.column + offset)
    }
}

/// One problem in a deployable, located like a compiler error.
public struct DeployableError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable code so that scripts (and tests) can tell problems apart without parsing text.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { self.rawValue }

        public static let fileNotReadable = Code(rawValue: "file_not_readable")
        public static let syntax = Code(rawValue: "syntax")
        public static let unknownKey = Code(rawValue: "unknown_key")
        public static let missingKey = Code(rawValue: "missing_key")
        public static let typeMismatch = Code(rawValue: "type_mismatch")
        public static let invalidValue = Code(rawValue: "invalid_value")
        public static let invalidName = Code(rawValue: "invalid_name")
        public static let duplicateName = Code(rawValue: "duplicate_name")
        public static let unknownReference = Code(rawValue: "unknown_reference")
        public static let ambiguousReference = Code(rawValue: "ambiguous_reference")
        public static let missingRequired = Code(rawValue: "missing_required")
        public static let unknownSetting = Code(rawValue: "unknown_setting")
        public static let cycle = Code(rawValue: "cycle")
        /// Nested too deep, or aliases that expand too far: refused before it is read.
        public static let limitExceeded = Code(rawValue: "limit_exceeded")
    }

    /// A secondary location that explains the error (the edges of a cycle, the first definition).
    public struct Note: Hashable, Sendable {
        public var message: String
        public var location: FileLocation?
        public init(_ message: String, at location: FileLocation?) {
            self.message = message
            self.location = location
        }
    }

    public var code: Code
    public var message: String
    public var location: FileLocation?
    public var notes: [Note]

    public init(_ code: Code, _ message: String, at location: FileLocation?, notes: [Note] = []) {
        self.code = code
        self.message = message
        self.location = location
        self.notes = notes
    }

    /// `file:line:column: error: message`, then one `note:` line per note.
    public var description: String {
        var lines = [Self.line(self.location, "error", self.message)]
        lines += self.notes.map { Self.line($0.location, "note", $0.message) }
        return lines.joined(separator: "\n")
    }

    private static func line(_ location: FileLocation?, _ severity: String, _ message: String) -> String {
        if let location { return "\(location): \(severity): \(message)" }
        return "conductor: \(severity): \(message)"
    }
}

/// Every problem found at once, in file order: a user fixes them in one pass.
public struct DeployableErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [DeployableError]
    public init(_ errors: [DeployableError]) { self.errors = errors }
    public var description: String { self.errors.map(\.description).joined(separator: "\n") }
}

/// Collects errors while parsing goes on, so one run reports them all.
struct DiagnosticSink {
    private(set) var errors: [DeployableError] = []

    mutating func error(_ code: DeployableError.Code, _ message: String, at location: FileLocation?, notes: [DeployableError.Note] = []) {
        self.errors.append(DeployableError(code, message, at: location, notes: notes))
    }

    mutating func append(contentsOf errors: [DeployableError]) { self.errors += errors }

    var isEmpty: Bool { self.errors.isEmpty }

    /// Sorted by location and without exact duplicates (a shared node reached twice).
    var sorted: [DeployableError] {
        var seen = Set<DeployableError>()
        return self.errors.filter { seen.insert($0).inserted }.sorted { lhs, rhs in
            switch (lhs.location, rhs.location) {
            case (let l?, let r?): return l < r
            case (nil, .some): return true
            default: return false
            }
        }
    }
}

enum Spelling {
    /// The candidate closest to `word`, when it is close enough to be a likely typo.
    static func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
        let limit = max(1, min(3, word.count / 3))
        var best: (String, Int)?
        for candidate in candidates {
            let distance = Self.distance(word.lowercased(), candidate.lowercased())
            if distance <= limit, distance < (best?.1 ?? .max) { best = (candidate, distance) }
        }
        return best?.0
    }

    /// " (did you mean 'x'?)" or "".
    static func hint(for word: String, among candidates: some Sequence<String>) -> String {
        Self.suggestion(for: word, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// Edit distance counting a swap of neighbours as one edit ("cuont" -> "count").
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}

/// Names of deployables, instances, services, parameters and facts: a letter, then letters,
/// digits, `_` or `-`, at most 63 characters. They appear in references (`${db.mysql.port}`)
/// and in environment variables, so dots, brackets and spaces are out.
enum Names {
    static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63 else { return false }
        guard Self.isLetter(first) else { return false }
        return name.unicodeScalars.allSatisfy { Self.isLetter($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
    }

    static let rule = "a letter, then letters, digits, '_' or '-' (at most 63)"

    /// Parameters become environment variables: the agent's rule, so no '-' either.
    static func isValidParameter(_ name: String) -> Bool { EnvironmentVariableName.isValid(name) }

    static let parameterRule = EnvironmentVariableName.rule
}
