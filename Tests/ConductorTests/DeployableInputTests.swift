import Conductor
import Foundation
import Mesh
import Testing

/// `a0:` / ` a1:` / `  a2:` …: map number N (1-based) starts at line N, column N.
func nestedBlockMap(depth: Int) -> String {
    (0..<depth).map { String(repeating: " ", count: $0) + "a\($0):" }.joined(separator: "\n") + " end\n"
}

/// "Billion laughs": each line's list holds nine aliases of the line above, so `levels`
/// lines of text expand to 9^levels nodes.
func nestedAliases(levels: Int) -> String {
    let names = (0..<levels).map { "l\($0)" }
    var lines = ["\(names[0]): &\(names[0]) [x, x, x, x, x, x, x, x, x]"]
    for (previous, name) in zip(names, names.dropFirst()) {
        lines.append("\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]")
    }
    return lines.joined(separator: "\n") + "\n"
}

private let limitExceeded = DeployableError.Code(rawValue: "limit_exceeded")

@Suite("Deployable input: limits, unreadable files, environments")
struct DeployableInputTests {
    // MARK: - Nesting and aliases

    @Test func deepBlockNestingIsRefusedAtTheFirstLevelPastTheLimit() throws {
        let started = ContinuousClock.now
        let report = DeployableLoader.validate(yaml: nestedBlockMap(depth: 3000), file: "deep.yml")
        #expect(started.duration(to: .now) < .seconds(10))
        let error = try #require(report.errors.first { $0.code == limitExceeded }, "\(report.errors)")
        #expect(error.description == "deep.yml:65:65: error: maps and lists are nested more than 64 levels deep")
        #expect(report.errors.count == 1)
    }

    @Test func deepFlowNestingIsRefused() throws {
        let yaml = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
        let report = DeployableLoader.validate(yaml: yaml, file: "flow.yml")
        let error = try #require(report.errors.first { $0.code == limitExceeded }, "\(report.errors)")
        #expect(error.location.map { "\($0.line):\($0.column)" } == "1:65")
    }

    @Test func nestingAtTheLimitIsNotRefused() {
        let report = DeployableLoader.validate(yaml: nestedBlockMap(depth: 64), file: "deep.yml")
        #expect(!report.errors.isEmpty, "not a deployable, but only for its keys")
        #expect(!report.errors.contains { $0.code == limitExceeded }, "\(report.errors)")
    }

    @Test func aliasesThatExpandTooFarAreRefusedAtTheAliasThatCrossesTheLimit() throws {
        let started = ContinuousClock.now
        let report = DeployableLoader.validate(yaml: nestedAliases(levels: 6), file: "laughs.yml")
        #expect(started.duration(to: .now) < .seconds(10))
        let error = try #require(report.errors.first { $0.code == limitExceeded }, "\(report.errors)")
        // l0 is 10 nodes, l1 91, l2 820, l3 7381: the first *l3 takes the total past 10,000.
        #expect(error.description.hasPrefix("laughs.yml:5:10: error: aliases expand to more than 10000 nodes"), "\(error)")
        #expect(report.errors.count == 1)
    }

    @Test func aliasesCannotNestPastTheLimitEither() throws {
        let deep = String(repeating: "[", count: 40) + "x" + String(repeating: "]", count: 40)
        let aliased = String(repeating: "[", count: 40) + "*a" + String(repeating: "]", count: 40)
        let report = DeployableLoader.validate(yaml: "a: &a \(deep)\nb: \(aliased)\n", file: "alias.yml")
        let error = try #require(report.errors.first { $0.code == limitExceeded }, "\(report.errors)")
        #expect(error.location.map { "\($0.line):\($0.column)" } == "2:44")
        #expect(error.message.contains("nested more than 64 levels deep"))
    }

    @Test func sharingAValueThroughAnAliasStillWorks() throws {
        let yaml = """
            name: x
            parameters:
              common: &common {region: eu, tier: 2}
            instances:
              db: {services: {s: {script: 'true', parameters: {settings: *common}}}}

            """
        let report = DeployableLoader.validate(yaml: yaml, file: "alias.yml")
        #expect(report.isValid, "\(report.errors)")
    }

    // MARK: - Syntax errors where they start

    @Test func anUnterminatedQuoteIsReportedWhereItStarts() throws {
        // Nothing after the opening quote closes it, so libyaml reads on to the end of the file.
        let yaml = "name: x\ndescription: \"never closed\ninstances:\n  db:\n    services: {s: {script: true}}\n"
        let report = DeployableLoader.validate(yaml: yaml, file: "quote.yml")
        let error = try #require(report.errors.first)
        #expect(report.errors.count == 1)
        #expect(error.code == .syntax)
        #expect(error.location.map { "\($0.line):\($0.column)" } == "2:14", "\(error)")
        #expect(error.message.contains("quoted string is never closed"), "\(error)")
    }

    @Test func everyDuplicateKeyIsReportedWithTheFirstOne() {
        let yaml = """
            name: x
            name: y
            instances:
              db:
                count: 1
                count: 2
                services: {s: {script: 'true'}, s: {script: 'false'}}
              db:
                count: 3
                count: 4
                services: {t: {script: 'true'}}

            """
        let report = DeployableLoader.validate(yaml: yaml, file: "dup.yml")
        let duplicates = report.errors.filter { $0.code == .duplicateName }
        #expect(duplicates.map(\.description) == [
            "dup.yml:2:1: error: duplicate key 'name'\ndup.yml:1:1: note: first defined here",
            "dup.yml:6:5: error: duplicate key 'count'\ndup.yml:5:5: note: first defined here",
            "dup.yml:7:37: error: duplicate key 's'\ndup.yml:7:16: note: first defined here",
            "dup.yml:8:3: error: duplicate key 'db'\ndup.yml:4:3: note: first defined here",
            // Inside the duplicate, which is dropped: still a mistake to fix in the same pass.
            "dup.yml:10:5: error: duplicate key 'count'\ndup.yml:9:5: note: first defined here",
        ], "\(report.errors)")
    }

    // MARK: - Parameter names

    @Test(arguments: ["a", "db_host", "DB_HOST_2", String(repeating: "a", count: 63), "", "1a", "_", "_private", "db-host", "db.host", "a b", "é", String(repeating: "a", count: 64)])
    func parameterNamesFollowTheAgentsRule(_ name: String) {
        let yaml = "name: x\ninstances:\n  db: {services: {s: {script: 'true', parameters: {'\(name)': 1}}}}\n"
        let refusedByValidate = DeployableLoader.validate(yaml: yaml, file: "names.yml").errors.contains { $0.code == .invalidName }
        let refusedByAgent = (try? RunRequest(command: .shell("true"), env: [name: "v"]).validate()) == nil
        #expect(refusedByValidate == refusedByAgent)
    }

    // MARK: - Files that cannot be read

    @Test func aMissingFileIsNamedWithTheReason() throws {
        let directory = try ScratchDirectory()
        let path = directory.path + "/nope.yml"
        let report = DeployableLoader.load(file: path)
        #expect(report.errors.map(\.description) == ["conductor: error: cannot read deployable '\(path)': no such file"])
        #expect(report.errors.first?.code == .fileNotReadable)
    }

    @Test func aDirectoryIsNamedWithTheReason() throws {
        let directory = try ScratchDirectory()
        let report = DeployableLoader.load(file: directory.path)
        #expect(report.errors.map(\.description) == ["conductor: error: cannot read deployable '\(directory.path)': it is a directory, not a file"])
    }

    @Test func binaryBytesAreReportedWhereTheyStart() throws {
        let directory = try ScratchDirectory()
        let path = directory.path + "/binary.yml"
        try Data("name: x\ninstances: \u{7F}".utf8 + [0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: path))
        let report = DeployableLoader.load(file: path)
        #expect(report.errors.map(\.description) == ["\(path):2:13: error: cannot read deployable '\(path)': not UTF-8 text (byte 0xFF)"])
    }

    @Test(.enabled(if: geteuid() != 0, "root reads every file"))
    func anUnreadableFileSaysPermissionDenied() throws {
        let directory = try ScratchDirectory()
        let path = directory.path + "/secret.yml"
        try "name: x\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: path)
        let report = DeployableLoader.load(file: path)
        #expect(report.errors.map(\.message) == ["cannot read deployable '\(path)': permission denied"])
    }

    // MARK: - Environments

    @Test func aMissingEnvironmentListsTheEnvironmentsThereAre() throws {
        let directory = try ScratchDirectory()
        let file = directory.path + "/deployable.yml"
        try "name: x\ninstances:\n  db: {services: {s: {script: 'true'}}}\n".write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.path + "/environments", withIntermediateDirectories: true)
        for name in ["staging", "dev"] {
            try "parameters: {}\n".write(toFile: directory.path + "/environments/\(name).yml", atomically: true, encoding: .utf8)
        }
        try "not an environment\n".write(toFile: directory.path + "/environments/README", atomically: true, encoding: .utf8)

        let prod = DeployableLoader.load(file: file, environment: "prod")
        #expect(prod.errors.map(\.message) == [
            "environment 'prod': cannot read \(directory.path)/environments/prod.yml: no such file; the environments next to the deployable are: dev, staging",
        ])
        let typo = DeployableLoader.load(file: file, environment: "stagign")
        #expect(typo.errors.first?.message.hasSuffix("the environments next to the deployable are: dev, staging (did you mean 'staging'?)") == true, "\(typo.errors)")
    }

    @Test func aMissingEnvironmentSaysWhenThereAreNone() throws {
        let directory = try ScratchDirectory()
        let file = directory.path + "/deployable.yml"
        try "name: x\ninstances:\n  db: {services: {s: {script: 'true'}}}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let report = DeployableLoader.load(file: file, environment: "prod")
        #expect(report.errors.map(\.message) == [
            "environment 'prod': cannot read \(directory.path)/environments/prod.yml: no such file; there are no environments next to the deployable (environments/NAME.yml)",
        ])
    }
}

/// A fresh temporary directory, removed when the test is done with it.
final class ScratchDirectory {
    let path: String

    init() throws {
        self.path = FileManager.default.temporaryDirectory.appendingPathComponent("conductor-deployable-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }
}
