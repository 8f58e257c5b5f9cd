import AMQPClient
import Agent
import ArgumentParser
import Foundation
import Mesh
import MeshClient

/// `conductor facts`: asks every agent for its host facts and prints them.
struct FactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facts",
        abstract: "List agents and their facts from the bus.",
        discussion: """
            Broadcasts a fact query (_query_request on console.request.query); every agent whose \
            host facts match --where answers, the others stay silent. Answers are collected until \
            --timeout passes, or earlier once --expect agents have answered: an agent that stays \
            silent cannot be told from a slow one, so waiting for "everyone" means waiting for \
            the timeout.

            --where takes the CLI form (os=debian, memory_total>=1000000 and hostname~^web, \
            has:custom.role) or QMF's list form as JSON (["eq", "os", ["quote", "debian"]]); \
            see docs/protocol.md.

            Exit status: 0 when at least one agent answered, 1 when none did, 2 on an error \
            (bus unreachable, invalid predicate).
            """
    )

    @OptionGroup var bus: BusOptions

    @Option(name: .long, help: "Only agents whose facts match this predicate.")
    var `where`: String?

    @Option(name: .long, help: "How long to collect answers: 2s, 500ms, 1.5 (seconds).")
    var timeout: String = "2s"

    @Option(name: .long, help: "Stop as soon as this many agents have answered.")
    var expect: Int?

    @Option(name: .long, help: "An extra column: a fact by dotted path, e.g. custom.role (repeatable).")
    var fact: [String] = []

    @Flag(name: .long, help: "Print a JSON list of {agent, epoch, values} instead of a table.")
    var json = false

    func validate() throws {
        guard Self.parseDuration(self.timeout) != nil else {
            throw ValidationError("--timeout must be like 2s, 500ms or 1.5, got '\(self.timeout)'")
        }
        if let expect, expect < 1 { throw ValidationError("--expect must be at least 1") }
    }

    static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let (number, scale): (Substring, Double) =
            trimmed.hasSuffix("ms") ? (trimmed.dropLast(2), 0.001) : trimmed.hasSuffix("s") ? (trimmed.dropLast(), 1) : (Substring(trimmed), 1)
        guard let value = Double(number), value > 0, value * scale <= 3600 else { return nil }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    func run() async throws {
        var predicate: Mesh.Predicate?
        if let text = self.where {
            do {
                predicate = try Mesh.Predicate.parse(text)
            } catch {
                Self.fail("invalid --where: \(error)")
            }
        }
        let (broker, source) = try self.bus.configuration(local: .recipe)
        let answers: QueryAnswers
        do {
            let console = try await MeshConsole.connect(broker)
            let query = QueryRequest(what: .object, schemaID: MeshSchema.hostClassID, where: predicate)
            answers = try await console.query(query, timeout: Self.parseDuration(self.timeout)!, expectedAgents: self.expect)
            try? await console.close()
        } catch {
            Self.fail("cannot query the bus at \(broker.redactedURL) (from \(source)): \(error)")
        }
        for (agent, exception) in answers.exceptions {
            FileHandle.standardError.write(Data("conductor facts: \(agent) answered \(exception)\n".utf8))
        }
        let objects = answers.objects.sorted { ($0.objectID.agentName ?? "") < ($1.objectID.agentName ?? "") }
        if self.json {
            let list = MeshValue.list(objects.map { object in
                .map(["agent": .string(object.objectID.agentName ?? ""), "epoch": object.objectID.agentEpoch.map(MeshValue.int) ?? .null, "values": .map(object.values)])
            })
            print(list.json)
        } else {
            print(Self.table(objects, extra: self.fact), terminator: "")
        }
        if objects.isEmpty {
            FileHandle.standardError.write(Data("conductor facts: no agent answered within \(self.timeout)\n".utf8))
            throw ExitCode(1)
        }
    }

    static let columns: [(title: String, path: String)] = [
        ("AGENT", ""), ("HOSTNAME", "hostname"), ("IPADDRESS", "ipaddress"), ("OS", "os"), ("RELEASE", "os_release"),
        ("ARCH", "arch"), ("CPUS", "cpu_count"), ("MEMORY", "memory_total"), ("SSHD", "sshd.port"),
    ]

    static func table(_ objects: [ObjectData], extra: [String]) -> String {
        let columns = Self.columns + extra.map { ($0.uppercased(), $0) }
        var rows = [columns.map(\.title)]
        for object in objects {
            rows.append(columns.map { column in
                if column.path.isEmpty { return object.objectID.agentName ?? "?" }
                guard let value = MeshValue.map(object.values)[path: column.path] else { return "-" }
                if column.path == "memory_total", let bytes = value.intValue { return String(format: "%.1fG", Double(bytes) / 1_073_741_824) }
                // os_release may be the whole os-release map; its VERSION_ID is what fits a column.
                if column.path == "os_release", let version = value[path: "VERSION_ID"]?.stringValue { return version }
                return value.stringValue ?? value.json
            })
        }
        let widths = columns.indices.map { index in rows.map { $0[index].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("conductor facts: \(message)\n".utf8))
        Foundation.exit(2)
    }
}
