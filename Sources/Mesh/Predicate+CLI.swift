// The friendly form for people at a shell:
//
//     os=linux, memory_total>=1000000 and hostname~^web
//     sshd.port!=22,has:custom.role,!has:custom.retired
//
// Clauses are joined by `,` or the word `and`; all must hold. Operators: = (or ==), !=,
// <, <=, >, >=, ~ (re_match), !~ (not re_match), has:PATH (exists), !has:PATH. A value is
// a number or true/false when it reads as one, else a string; double quotes force a string
// and may hold commas, spaces and \" escapes: version="10", motd="a, b".

extension Predicate {
    /// Parses the CLI form into an `and` of its clauses (or the single clause).
    public static func parse(cli text: String) throws(PredicateError) -> Predicate {
        let clauses = try splitClauses(text)
        guard !clauses.isEmpty else { throw PredicateError("predicate is empty") }
        var parsed: [Predicate] = []
        for (index, clause) in clauses.enumerated() {
            do {
                parsed.append(try parseClause(clause))
            } catch {
                throw error.located("clause \(index + 1) ('\(clause)')")
            }
        }
        return parsed.count == 1 ? parsed[0] : .and(parsed)
    }

    /// Splits on `,` and on a whitespace-delimited `and`, outside double quotes.
    private static func splitClauses(_ text: String) throws(PredicateError) -> [String] {
        var clauses: [String] = []
        var current = ""
        var inQuotes = false
        var escaped = false
        let characters = Array(text)
        var index = 0
        func finish() throws(PredicateError) {
            let clause = current.trimmingCharacters(in: .whitespaces)
            guard !clause.isEmpty else {
                throw PredicateError("empty clause", at: "clause \(clauses.count + 1)")
            }
            clauses.append(clause)
            current = ""
        }
        while index < characters.count {
            let c = characters[index]
            if inQuotes {
                current.append(c)
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inQuotes = false }
                index += 1
                continue
            }
            if c == "\"" {
                inQuotes = true
            } else if c == "," {
                try finish()
                index += 1
                continue
            } else if c.isWhitespace, index + 4 < characters.count,
                String(characters[(index + 1)...(index + 3)]).lowercased() == "and",
                characters[index + 4].isWhitespace
            {
                try finish()
                index += 5
                continue
            }
            current.append(c)
            index += 1
        }
        guard !inQuotes else { throw PredicateError("a double quote is not closed") }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty || !clauses.isEmpty {
            try finish()
        }
        return clauses
    }

    /// Longest first, so `>=` is not read as `>` followed by `=value`.
    private static let operatorSymbols = ["==", "!=", ">=", "<=", "!~", "=", ">", "<", "~"]

    private static func clause(_ symbol: String, _ path: String, _ value: MeshValue) throws(PredicateError) -> Predicate {
        switch symbol {
        case "=", "==": return .compare(.eq, .property(path), .literal(value))
        case "!=": return .compare(.ne, .property(path), .literal(value))
        case ">=": return .compare(.ge, .property(path), .literal(value))
        case "<=": return .compare(.le, .property(path), .literal(value))
        case ">": return .compare(.gt, .property(path), .literal(value))
        case "<": return .compare(.lt, .property(path), .literal(value))
        case "~": return try regexClause(value, path)
        default: return .not(try regexClause(value, path))  // "!~"
        }
    }

    private static func regexClause(_ value: MeshValue, _ path: String) throws(PredicateError) -> Predicate {
        let pattern: String
        switch value {
        case .string(let s): pattern = s
        default: pattern = value.json  // `~5` means the text "5"
        }
        return .reMatch(.property(path), try RegexPattern(pattern))
    }

    private static func parseClause(_ text: String) throws(PredicateError) -> Predicate {
        for (prefix, negate) in [("!has:", true), ("has:", false)] where text.hasPrefix(prefix) {
            let path = text.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
            try validatePath(path)
            return negate ? .not(.exists(path)) : .exists(path)
        }
        guard let start = text.firstIndex(where: { "=!<>~".contains($0) }) else {
            throw PredicateError("no operator (expected one of = != < <= > >= ~ !~ or has:PATH)")
        }
        let path = text[..<start].trimmingCharacters(in: .whitespaces)
        try validatePath(path)
        let rest = text[start...]
        for symbol in operatorSymbols where rest.hasPrefix(symbol) {
            let raw = rest.dropFirst(symbol.count).trimmingCharacters(in: .whitespaces)
            guard !raw.isEmpty else {
                throw PredicateError("value is missing after '\(symbol)' (write \"\" for an empty string)")
            }
            return try clause(symbol, path, try literal(raw))
        }
        throw PredicateError("operator '\(rest.prefix(2))' is unknown (expected one of = != < <= > >= ~ !~)")
    }

    private static func validatePath(_ path: String) throws(PredicateError) {
        guard !path.isEmpty else { throw PredicateError("property name is missing") }
        guard !path.contains(where: { $0.isWhitespace || $0 == "\"" }) else {
            throw PredicateError("property name '\(path)' contains a space or a quote")
        }
    }

    /// A bare word as the value it reads as; a double-quoted one as a string.
    private static func literal(_ raw: String) throws(PredicateError) -> MeshValue {
        if raw.hasPrefix("\"") {
            guard raw.count >= 2, raw.hasSuffix("\""), !raw.hasSuffix("\\\"") || raw.hasSuffix("\\\\\"") else {
                throw PredicateError("text after a closing double quote")
            }
            var out = ""
            var escaped = false
            for c in raw.dropFirst().dropLast() {
                if escaped {
                    out.append(c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    throw PredicateError("text after a closing double quote")
                } else {
                    out.append(c)
                }
            }
            return .string(out)
        }
        switch raw {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default: break
        }
        if let int = Int64(raw) { return .int(int) }
        // Only decimal notation: Swift's Double("0x10") would read hexadecimal.
        if raw.allSatisfy({ "0123456789.eE+-".contains($0) }), let double = Double(raw), double.isFinite {
            return .double(double)
        }
        return .string(raw)
    }
}
