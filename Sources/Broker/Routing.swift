import AMQPProtocol

/// The exchange types the broker routes for.
enum ExchangeType: String, Sendable {
    case direct, fanout, topic, headers
}

/// A topic binding key compiled once: words separated by `.`, where `*` matches exactly
/// one word and `#` zero or more.
struct TopicPattern: Sendable, Hashable {
    enum Word: Sendable, Hashable {
        case literal(Substring)
        case one
        case any
    }

    let words: [Word]

    init(_ key: String) {
        // As RabbitMQ: an empty key has no words at all (not one empty word).
        self.words = key.isEmpty ? [] : key.split(separator: ".", omittingEmptySubsequences: false).map { word in
            switch word {
            case "*": return .one
            case "#": return .any
            default: return .literal(word)
            }
        }
    }

    func matches(_ routingKey: String) -> Bool {
        let key = routingKey.isEmpty ? [] : routingKey.split(separator: ".", omittingEmptySubsequences: false)
        return Self.match(self.words[...], key[...])
    }

    private static func match(_ pattern: ArraySlice<Word>, _ key: ArraySlice<Substring>) -> Bool {
        var pattern = pattern
        var key = key
        while let word = pattern.first {
            switch word {
            case .any:
                pattern = pattern.dropFirst()
                // Collapse consecutive `#`s, then try every split point.
                while pattern.first == .any { pattern = pattern.dropFirst() }
                if pattern.isEmpty { return true }
                var rest = key
                while true {
                    if match(pattern, rest) { return true }
                    if rest.isEmpty { return false }
                    rest = rest.dropFirst()
                }
            case .one:
                guard !key.isEmpty else { return false }
                pattern = pattern.dropFirst()
                key = key.dropFirst()
            case .literal(let literal):
                guard let first = key.first, first == literal else { return false }
                pattern = pattern.dropFirst()
                key = key.dropFirst()
            }
        }
        return key.isEmpty
    }
}

/// Headers-exchange matching: `x-match` is `all` (default), `any`, `all-with-x` or
/// `any-with-x`; binding keys starting with `x-` are ignored unless a `-with-x` mode is used.
/// A binding value of void matches on presence alone.
enum HeadersMatch {
    static func matches(binding: FieldTable, headers: FieldTable?) -> Bool {
        let mode = binding["x-match"]?.stringValue ?? "all"
        let any = mode == "any" || mode == "any-with-x"
        let withX = mode.hasSuffix("-with-x")
        let headers = headers ?? [:]
        for (key, expected) in binding {
            if key == "x-match" { continue }
            if key.hasPrefix("x-"), !withX { continue }
            let matched: Bool
            if let actual = headers[key] {
                matched = expected == .void || actual == expected
            } else {
                matched = false
            }
            if any, matched { return true }
            if !any, !matched { return false }
        }
        return any ? false : true
    }
}
