#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Mesh

/// The ports sshd listens on, read the way sshd reads its configuration: keywords are
/// case-insensitive, `keyword value` or `keyword=value`, `Include` expands globs
/// (relative to the sshd_config directory) in place, every `Port` line adds a port, and
/// `Match` blocks (where `Port` is not allowed) do not count.
public struct SSHDConfig: Sendable, Hashable {
    public static let defaultPort = 22
    /// OpenSSH's own bound on nested includes.
    public static let maximumIncludeDepth = 16

    /// Every port, in the order sshd would open them; `[22]` when none is configured.
    public var ports: [Int]
    /// Files read, in order, for diagnostics.
    public var filesRead: [String]

    public var port: Int { ports.first ?? Self.defaultPort }

    /// Reads `configPath` (relative to `sources.root`); a missing file means the defaults.
    public static func load(_ configPath: String, sources: FactSources) -> SSHDConfig {
        var parser = Parser(sources: sources, baseDirectory: (configPath as NSString).deletingLastPathComponent)
        parser.parseFile(configPath, depth: 0)
        var unique: [Int] = []
        for port in parser.ports where !unique.contains(port) { unique.append(port) }
        return SSHDConfig(ports: unique.isEmpty ? [defaultPort] : unique, filesRead: parser.filesRead)
    }

    /// `{port: N, ports: [..]}`, the `sshd` fact.
    public var meshValue: MeshValue {
        .map(["port": .int(Int64(port)), "ports": .list(ports.map { .int(Int64($0)) })])
    }

    private struct Parser {
        let sources: FactSources
        /// Directory relative paths in `Include` are resolved against (etc/ssh).
        let baseDirectory: String
        var ports: [Int] = []
        var filesRead: [String] = []

        init(sources: FactSources, baseDirectory: String) {
            self.sources = sources
            self.baseDirectory = baseDirectory
        }

        mutating func parseFile(_ relativePath: String, depth: Int) {
            guard depth <= SSHDConfig.maximumIncludeDepth, let text = sources.read(relativePath) else { return }
            filesRead.append(relativePath)
            var inMatchBlock = false
            for line in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
                let words = Self.words(of: line)
                guard let keyword = words.first?.lowercased() else { continue }
                let arguments = words.dropFirst()
                switch keyword {
                case "match":
                    // A Match block runs to the next Match or the end of the file.
                    inMatchBlock = !(arguments.first?.lowercased() == "all")
                case "include":
                    for pattern in arguments { include(pattern, depth: depth) }
                case "port" where !inMatchBlock:
                    if let value = arguments.first, let port = Int(value), (1...65535).contains(port) {
                        ports.append(port)
                    }
                default:
                    continue
                }
            }
        }

        private mutating func include(_ pattern: String, depth: Int) {
            let relative = pattern.hasPrefix("/") ? pattern : baseDirectory + "/" + pattern
            for match in Self.expand(sources.path(relative)) {
                // Back to root-relative, as parseFile expects.
                let rootPrefix = sources.path("")
                let relativeMatch = match.hasPrefix(rootPrefix) ? String(match.dropFirst(rootPrefix.count)) : match
                parseFile(relativeMatch, depth: depth + 1)
            }
        }

        /// Words of a config line: split on whitespace and one `=`, honouring double
        /// quotes, ending at a `#` that starts a word.
        static func words(of line: Substring) -> [String] {
            var words: [String] = []
            var current = ""
            var inQuotes = false
            var hasWord = false
            var sawEquals = false
            for character in line {
                if inQuotes {
                    if character == "\"" { inQuotes = false } else { current.append(character) }
                    continue
                }
                if character == "\"" {
                    inQuotes = true
                    hasWord = true
                } else if character == "=", !sawEquals, words.count + (hasWord ? 1 : 0) == 1 {
                    // The one `=` allowed between keyword and value, spaces around it or not.
                    sawEquals = true
                    if hasWord { words.append(current) }
                    current = ""
                    hasWord = false
                } else if character.isWhitespace {
                    if hasWord { words.append(current) }
                    current = ""
                    hasWord = false
                } else if character == "#" && !hasWord {
                    break
                } else {
                    current.append(character)
                    hasWord = true
                }
            }
            if hasWord { words.append(current) }
            return words
        }

        static func expand(_ pattern: String) -> [String] {
            var result = glob_t()
            defer { globfree(&result) }
            guard glob(pattern, 0, nil, &result) == 0 else { return [] }
            return (0..<Int(result.gl_pathc)).compactMap { index in
                result.gl_pathv[index].map { String(cString: $0) }
            }
        }
    }
}
