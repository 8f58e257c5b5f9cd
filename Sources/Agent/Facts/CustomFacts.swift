import Foundation
import Mesh
import ProcessSupport
import Yams

/// Facter-style external facts: data files and executables in one directory.
///
/// - `*.yaml`, `*.yml`, `*.json`: a map whose keys become facts.
/// - `*.txt`: `key=value` lines.
/// - any other executable file: run with a timeout; its stdout is a JSON object or
///   `key=value` lines.
///
/// Files are read in name order and later files win on a shared key. A file that cannot
/// be used is reported in `errors` by file name; the others still count.
public struct CustomFactLoader: Sendable {
    public var directory: String
    public var timeout: Duration
    public var outputLimit: Int

    public init(directory: String, timeout: Duration = .seconds(10), outputLimit: Int = 256 * 1024) {
        self.directory = directory
        self.timeout = timeout
        self.outputLimit = outputLimit
    }

    public init(sources: FactSources) {
        self.init(directory: sources.customFactsDirectory, timeout: sources.customFactTimeout, outputLimit: sources.customFactOutputLimit)
    }

    public struct Result: Sendable, Hashable {
        public var facts: [String: MeshValue] = [:]
        /// File name -> what was wrong with it.
        public var errors: [String: String] = [:]
    }

    public func load() async -> Result {
        var result = Result()
        let fileManager = FileManager.default
        // A missing directory simply means no custom facts.
        guard let names = try? fileManager.contentsOfDirectory(atPath: directory) else { return result }
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let outcome: Swift.Result<[String: MeshValue], CustomFactError>
            switch (name as NSString).pathExtension.lowercased() {
            case "yaml", "yml": outcome = Self.parseYAML(fileManager.contents(atPath: path))
            case "json": outcome = Self.parseJSON(fileManager.contents(atPath: path))
            case "txt": outcome = Self.parseKeyValues(String(decoding: fileManager.contents(atPath: path) ?? Data(), as: UTF8.self))
            default:
                guard fileManager.isExecutableFile(atPath: path) else { continue }
                outcome = await runExecutable(path)
            }
            switch outcome {
            case .success(let facts): result.facts.merge(facts) { _, later in later }
            case .failure(let error): result.errors[name] = error.message
            }
        }
        return result
    }

    func runExecutable(_ path: String) async -> Swift.Result<[String: MeshValue], CustomFactError> {
        let request = ProcessRequest(
            .executable(path),
            workingDirectory: directory,
            timeout: timeout,
            killGracePeriod: .seconds(1),
            outputLimit: outputLimit
        )
        let result: ProcessResult
        do {
            result = try await ProcessRunner.run(request)
        } catch {
            return .failure(CustomFactError(error.description))
        }
        if result.timedOut {
            return .failure(CustomFactError("timed out after \(result.duration.formattedSeconds) (limit \(timeout.formattedSeconds)); killed"))
        }
        guard result.exitCode == 0 else {
            let status = result.exitCode.map { "exited with status \($0)" } ?? "killed by signal \(result.signal ?? 0)"
            let detail = result.stderr.text.split(whereSeparator: \.isNewline).first.map { ": \($0)" } ?? ""
            return .failure(CustomFactError(status + detail))
        }
        if result.stdout.truncated {
            return .failure(CustomFactError("output is longer than \(outputLimit) bytes"))
        }
        let output = result.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if output.hasPrefix("{") { return Self.parseJSON(Data(output.utf8)) }
        return Self.parseKeyValues(output)
    }

    static func parseJSON(_ data: Data?) -> Swift.Result<[String: MeshValue], CustomFactError> {
        guard let data else { return .failure(CustomFactError("cannot read file")) }
        let value: MeshValue
        do {
            value = try JSONDecoder().decode(MeshValue.self, from: data)
        } catch {
            return .failure(CustomFactError("invalid JSON: \(Self.describe(error))"))
        }
        guard case .map(let map) = value else { return .failure(CustomFactError("expected a JSON object at the top level")) }
        return .success(map)
    }

    static func parseYAML(_ data: Data?) -> Swift.Result<[String: MeshValue], CustomFactError> {
        guard let data else { return .failure(CustomFactError("cannot read file")) }
        let node: Node?
        do {
            node = try Yams.compose(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            return .failure(CustomFactError("invalid YAML: \(error)"))
        }
        guard let node else { return .success([:]) }  // An empty file has no facts.
        guard case .map(let map) = meshValue(of: node) else { return .failure(CustomFactError("expected a YAML mapping at the top level")) }
        return .success(map)
    }

    /// `key=value` lines; blank lines and `#` comments skipped, values kept as strings.
    static func parseKeyValues(_ text: String) -> Swift.Result<[String: MeshValue], CustomFactError> {
        var facts: [String: MeshValue] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let equals = trimmed.firstIndex(of: "="), equals != trimmed.startIndex else {
                return .failure(CustomFactError("line \(index + 1): expected key=value or a JSON object, got \"\(trimmed.prefix(60))\""))
            }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            facts[key] = .string(trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces))
        }
        return .success(facts)
    }

    static func meshValue(of node: Node) -> MeshValue {
        switch node {
        case .mapping(let mapping):
            var map: [String: MeshValue] = [:]
            for (key, value) in mapping { map[key.string ?? "\(key)"] = meshValue(of: value) }
            return .map(map)
        case .sequence(let sequence):
            return .list(sequence.map(meshValue(of:)))
        case .scalar(let scalar):
            // Yams keeps the resolved tag's name internal; its description is that name.
            switch Tag.Name(rawValue: node.tag.description) {
            case .null: return .null
            case .bool: return node.bool.map(MeshValue.bool) ?? .string(scalar.string)
            case .int: return node.int.map { .int(Int64($0)) } ?? .string(scalar.string)
            case .float: return node.float.map(MeshValue.double) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        }
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError.map { "\($0.localizedDescription)" }) ?? context.debugDescription
        }
        return "\(error)"
    }
}

struct CustomFactError: Error, Sendable, Hashable {
    var message: String
    init(_ message: String) { self.message = message }
}

extension Duration {
    var formattedSeconds: String {
        let (seconds, attoseconds) = components
        return String(format: "%.2fs", Double(seconds) + Double(attoseconds) / 1e18)
    }
}
