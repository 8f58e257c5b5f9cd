import Foundation

/// The result of every static check: the merged deployable and its plan, or the errors.
public struct ValidationReport: Sendable {
    public var deployable: Deployable?
    public var plan: ResolutionPlan?
    /// Sorted by file, line and column.
    public var errors: [DeployableError]

    public var isValid: Bool { self.errors.isEmpty && self.plan != nil }
}

/// Reads a deployable (and its environment overlay), applies `--set` values and runs
/// every static check. `conductor validate` prints the report; `launch` refuses to start
/// anything unless it is valid.
public enum DeployableLoader {
    public typealias FileReader = @Sendable (String) -> String?

    public static let readFromDisk: FileReader = { path in try? String(contentsOfFile: path, encoding: .utf8) }

    /// `environment` names `environments/<name>.yml` next to the deployable.
    public static func load(
        file: String, environment: String? = nil, settings: [(name: String, value: String)] = [],
        readFile: @escaping FileReader = DeployableLoader.readFromDisk
    ) -> ValidationReport {
        guard let text = readFile(file) else {
            let problem = UnreadableFile(path: file)
            let reason = problem.map { ": \($0.reason)" } ?? ""
            return ValidationReport(errors: [DeployableError(.fileNotReadable, "cannot read deployable '\(file)'\(reason)", at: problem?.location(in: file))])
        }
        var environmentInput: (name: String, file: String, text: String)?
        var errors: [DeployableError] = []
        if let environment {
            let directory = (file as NSString).deletingLastPathComponent
            let path = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent("environments/\(environment).yml")
            let display = directory.isEmpty ? "environments/\(environment).yml" : path
            if let text = readFile(path) {
                environmentInput = (environment, display, text)
            } else {
                errors.append(Self.unreadableEnvironment(environment, path: path, display: display))
            }
        }
        var report = Self.validate(
            yaml: text, file: file, environment: environmentInput, settings: settings,
            directory: (file as NSString).deletingLastPathComponent, readFile: readFile)
        report.errors = errors + report.errors
        return report
    }

    /// Says why, and when the file is not there, which environments there are.
    private static func unreadableEnvironment(_ name: String, path: String, display: String) -> DeployableError {
        let problem = UnreadableFile(path: path)
        var message = "environment '\(name)': cannot read \(display)" + (problem.map { ": \($0.reason)" } ?? "")
        if problem == .missing {
            let directory = (path as NSString).deletingLastPathComponent
            let known = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".yml") && $0 != ".yml" }.map { String($0.dropLast(4)) }.sorted()
            message += known.isEmpty
                ? "; there are no environments next to the deployable (environments/NAME.yml)"
                : "; the environments next to the deployable are: \(known.joined(separator: ", "))\(Spelling.hint(for: name, among: known))"
        }
        return DeployableError(.fileNotReadable, message, at: problem?.location(in: display))
    }

    /// The same checks on text in memory (tests, `launch` with a stored deployable).
    public static func validate(
        yaml: String, file: String, environment: (name: String, file: String, text: String)? = nil,
        settings: [(name: String, value: String)] = [], directory: String = ".",
        readFile: @escaping FileReader = DeployableLoader.readFromDisk
    ) -> ValidationReport {
        var sink = DiagnosticSink()
        let (root, syntaxErrors) = ConfigNode.parse(yaml: yaml, file: file)
        sink.append(contentsOf: syntaxErrors)
        guard let root else { return ValidationReport(errors: sink.sorted) }
        let (document, documentErrors) = LayerParser.parse(root, file: file, role: .deployable)
        sink.append(contentsOf: documentErrors)

        var overlay: (name: String, document: LayerDocument)?
        if let environment {
            let (envRoot, envSyntaxErrors) = ConfigNode.parse(yaml: environment.text, file: environment.file)
            sink.append(contentsOf: envSyntaxErrors)
            if let envRoot {
                let (envDocument, envErrors) = LayerParser.parse(envRoot, file: environment.file, role: .environment)
                sink.append(contentsOf: envErrors)
                overlay = (environment.name, envDocument)
            }
        }
        // Structural errors make merging report nonsense (an instance missing because its
        // map was malformed); stop here so every reported error is a real one.
        guard sink.isEmpty else { return ValidationReport(errors: sink.sorted) }

        let (deployable, mergeErrors) = LayerMerger.merge(
            deployable: document, environment: overlay, settings: settings, directory: directory.isEmpty ? "." : directory)
        sink.append(contentsOf: mergeErrors)
        guard let deployable else { return ValidationReport(errors: sink.sorted) }

        let (plan, planErrors) = PlanBuilder.build(deployable, readFile: readFile)
        sink.append(contentsOf: planErrors)
        return ValidationReport(deployable: deployable, plan: sink.isEmpty ? plan : nil, errors: sink.sorted)
    }
}
