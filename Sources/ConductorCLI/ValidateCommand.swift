import ArgumentParser
import Conductor
import Foundation

/// `conductor validate FILE`: every static check of a deployable, with compiler-style errors.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a deployable: schema, references, types, cycles.",
        discussion: """
            Reads FILE and, with --env NAME, environments/NAME.yml next to it; applies --set \
            values; checks unknown keys, types, names, references, required values and \
            dependency cycles. Errors are printed as file:line:column: error: message. \
            --explain lists every final value and where it came from. See docs/deployable.md.

            Exit status: 0 when valid, 1 when not.
            """
    )

    @OptionGroup var deployable: DeployableArguments

    @Flag(name: .long, help: "Print each final value with the file, line and layer it came from.")
    var explain = false

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let report = self.deployable.load()
        try ValidationPrinter(file: self.deployable.file, explain: self.explain, json: self.json).print(report)
        if !report.isValid { throw ExitCode(1) }
    }
}

/// What `validate` prints for a report (errors to stderr, or the summary, and with
/// `explain` every final value with its origin); `launch --explain` prints the same.
struct ValidationPrinter {
    var file: String
    var explain: Bool
    var json: Bool

    func print(_ report: ValidationReport) throws {
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(ValidationOutput(report, explain: self.explain))
            Swift.print(String(decoding: data, as: UTF8.self))
        } else {
            self.printText(report)
        }
    }

    private func printText(_ report: ValidationReport) {
        guard report.isValid, let deployable = report.deployable, let plan = report.plan else {
            let text = report.errors.map(\.description).joined(separator: "\n")
            FileHandle.standardError.write(Data((text + "\n\(report.errors.count) error\(report.errors.count == 1 ? "" : "s")\n").utf8))
            return
        }
        let environment = deployable.environment.map { ", environment \($0)" } ?? ""
        Swift.print("\(self.file): deployable '\(deployable.name)'\(environment) is valid")
        for name in plan.order {
            let instance = deployable.instance(name)!
            let members = instance.members.map(\.description).joined(separator: ", ")
            let services = instance.services.map(\.name).joined(separator: ", ")
            Swift.print("  \(name): \(members) (provider \(instance.provider.value); services: \(services))")
        }
        Swift.print("  configuration order: \(plan.order.joined(separator: " -> "))")
        if !plan.secrets.isEmpty {
            Swift.print("  secrets generated at launch: \(plan.secrets.keys.sorted().map(\.rawValue).joined(separator: ", "))")
        }
        if self.explain {
            Swift.print("")
            for entry in deployable.explain() {
                let hidden = entry.overridden.isEmpty ? "" : " (overrides \(entry.overridden.map(\.description).joined(separator: ", ")))"
                Swift.print("\(entry.path) = \(entry.value)")
                Swift.print("    from \(entry.origin)\(hidden)")
            }
        }
    }
}

/// The `--json` shape: stable keys for scripts.
private struct ValidationOutput: Encodable {
    struct Location: Encodable {
        var file: String
        var line: Int
        var column: Int
        init?(_ location: FileLocation?) {
            guard let location else { return nil }
            (self.file, self.line, self.column) = (location.file, location.line, location.column)
        }
    }

    struct Note: Encodable {
        var message: String
        var location: Location?
    }

    struct Problem: Encodable {
        var code: String
        var message: String
        var location: Location?
        var notes: [Note]
    }

    struct Member: Encodable {
        var instance: String
        var members: [String]
        var provider: String
        var services: [String]
        var waitsFor: [String]
    }

    struct Explained: Encodable {
        var path: String
        var value: String
        var layer: String
        var location: Location?
        var overrides: [String]
    }

    var valid: Bool
    var errors: [Problem]
    var deployable: String?
    var environment: String?
    var order: [String]?
    var instances: [Member]?
    var secrets: [String]?
    var explain: [Explained]?

    init(_ report: ValidationReport, explain: Bool) {
        self.valid = report.isValid
        self.errors = report.errors.map { error in
            Problem(
                code: error.code.rawValue, message: error.message, location: Location(error.location),
                notes: error.notes.map { Note(message: $0.message, location: Location($0.location)) })
        }
        guard report.isValid, let deployable = report.deployable, let plan = report.plan else { return }
        self.deployable = deployable.name
        self.environment = deployable.environment
        self.order = plan.order
        self.instances = plan.order.map { name in
            let instance = deployable.instance(name)!
            let waits = Set(plan.members.filter { $0.member.instance == name }.flatMap(\.requirements))
            return Member(
                instance: name, members: instance.members.map(\.description), provider: instance.provider.value,
                services: instance.services.map(\.name), waitsFor: waits.sorted().map(\.description))
        }
        self.secrets = plan.secrets.keys.sorted().map(\.rawValue)
        if explain {
            self.explain = deployable.explain().map { entry in
                Explained(
                    path: entry.path, value: entry.value, layer: entry.origin.layer.rawValue,
                    location: Location(entry.origin.location), overrides: entry.overridden.map(\.description))
            }
        }
    }
}

/// The deployable a command reads: FILE, --env and --set, shared by `validate`, `launch`
/// and the background `serve`.
struct DeployableArguments: ParsableArguments {
    @Argument(help: "The deployable YAML file.")
    var file: String

    @Option(name: .long, help: "Overlay environments/NAME.yml from the deployable's directory.")
    var env: String?

    @Option(name: .customLong("set"), help: "Supply a top-level parameter: NAME=VALUE (repeatable).")
    var settings: [String] = []

    func validate() throws {
        for setting in self.settings where Self.split(setting) == nil {
            throw ValidationError("--set takes NAME=VALUE, got '\(setting)'")
        }
    }

    /// FILE, with the environment and --set values, through every static check.
    func load() -> ValidationReport {
        DeployableLoader.load(file: self.file, environment: self.env, settings: self.parsedSettings)
    }

    /// The --set values as (name, value), in the order given.
    var parsedSettings: [(name: String, value: String)] { self.settings.compactMap(Self.split) }

    static func split(_ setting: String) -> (name: String, value: String)? {
        guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else { return nil }
        return (String(setting[..<equals]), String(setting[setting.index(after: equals)...]))
    }
}
