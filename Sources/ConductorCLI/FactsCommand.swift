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
            Asks the coordinator (conductor serve, scope --scope) which agents are live: the \
            ones it heard a heartbeat from within three of their intervals. Each of them is \
            then asked directly (_query_request on qmf.default.direct; an agent asked directly \
            always answers, [] when it does not match --where), and the command ends as soon \
            as every live agent answered, or --expect agents matched, or --timeout passed. \
            A live agent that has not answered by the timeout (stopped or hung since its last \
            heartbeat) is named on stderr as silent; one whose request queue is gone is named \
            unreachable at once.

            With no coordinator on the bus (or one that does not answer within 0.5 s, or \
            whose registry is still filling right after it started), or with --broadcast, the \
            query is broadcast on console.request.query instead: every matching agent answers, \
            the others stay silent, and since a silent agent cannot be told from a slow one \
            the answers are collected until --timeout (or --expect). --verbose and --json say \
            which way was taken and why.

            --where takes the CLI form (os=debian, memory_total>=1000000 and hostname~^web, \
            has:custom.role) or QMF's list form as JSON (["eq", "os", ["quote", "debian"]]); \
            see docs/protocol.md.

            --json prints {"agents": [{agent, epoch, values}], "silent": [...], \
            "unreachable": [...], "ended": "all_live_answered" | "expected_answered" | \
            "timeout", "discovery": {"source": "registry" | "broadcast", "coordinator", \
            "live", "reason"}, "elapsed_ms"}.

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

    @Flag(name: .long, help: "Print one JSON object (agents, silent ones, why it ended, how agents were found) instead of a table.")
    var json = false

    @Option(name: .long, help: "The coordinator whose registry says who is live: conductor:coordinator:<scope> (default: $CONDUCTOR_COORDINATOR_SCOPE, else the local serve's, else default).")
    var scope: String?

    @Flag(name: .long, help: "Do not ask the coordinator who is live: broadcast and collect until --timeout (or --expect).")
    var broadcast = false

    @Flag(name: .long, help: "Say on stderr how the agents were found and why the collection ended.")
    var verbose = false

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
        let (broker, source, recordScope) = try self.bus.configurationAndScope(local: .recipe)
        let scope = self.scope ?? ProcessInfo.processInfo.environment["CONDUCTOR_COORDINATOR_SCOPE"].flatMap { $0.isEmpty ? nil : $0 } ?? recordScope ?? Coordinator.defaultScope
        let timeout = Self.parseDuration(self.timeout)!
        let started = ContinuousClock.now
        let query = QueryRequest(what: .object, schemaID: MeshSchema.hostClassID, where: predicate)
        var collected: Collected
        do {
            let console = try await MeshConsole.connect(broker)
            let discovery: AgentDiscovery =
                self.broadcast
                ? .broadcast(reason: "--broadcast")
                : await AgentDiscovery.ask(console, scope: scope, timeout: min(Self.registryTimeout, timeout))
            // The whole command stays within --timeout, the registry's question included.
            let remaining = max(timeout - started.duration(to: .now), .milliseconds(1))
            switch discovery {
            case .registry(_, let agents, _):
                let direct = try await console.query(query, to: agents.map(\.name), timeout: remaining, expectedAgents: self.expect)
                collected = Collected(answers: direct.answers, silent: direct.silent, unreachable: direct.unreachable, ended: direct.ended, discovery: discovery)
            case .broadcast:
                let answers = try await console.query(query, timeout: remaining, expectedAgents: self.expect)
                let ended: CollectionEnd = self.expect.map { Set(answers.objects.compactMap(\.objectID.agentName)).count >= $0 } == true ? .expectedAnswered : .timeout
                collected = Collected(answers: answers, silent: [], unreachable: [], ended: ended, discovery: discovery)
            }
            try? await console.close()
        } catch {
            Self.fail("cannot query the bus at \(broker.redactedURL) (from \(source)): \(error)")
        }
        let elapsed = started.duration(to: .now)
        let answers = collected.answers
        for (agent, exception) in answers.exceptions {
            FileHandle.standardError.write(Data("conductor facts: \(agent) answered \(exception)\n".utf8))
        }
        if !collected.silent.isEmpty {
            Self.note("\(collected.silent.count) live agent(s) went silent (a heartbeat within three intervals, no answer within \(self.timeout)): \(collected.silent.map(\.description).joined(separator: ", "))")
        }
        if !collected.unreachable.isEmpty {
            Self.note("\(collected.unreachable.count) live agent(s) unreachable (the broker returned the query: request queue gone): \(collected.unreachable.map(\.description).joined(separator: ", "))")
        }
        if case .registry(let coordinator, _, let ignored) = collected.discovery, ignored > 0 {
            Self.note("\(ignored) agent(s) send heartbeats under a login not their own; \(coordinator) does not list them, so they were not asked (--broadcast reaches them)")
        }
        if self.verbose { Self.note(collected.summary(elapsed: elapsed)) }
        let objects = answers.objects.sorted { ($0.objectID.agentName ?? "") < ($1.objectID.agentName ?? "") }
        if self.json {
            let list = MeshValue.list(objects.map { object in
                .map(["agent": .string(object.objectID.agentName ?? ""), "epoch": object.objectID.agentEpoch.map(MeshValue.int) ?? .null, "values": .map(object.values)])
            })
            var discovery: [String: MeshValue] = ["source": .string(collected.discovery.source)]
            switch collected.discovery {
            case .registry(let coordinator, let agents, let ignored):
                discovery["coordinator"] = .string(coordinator.description)
                discovery["live"] = .int(Int64(agents.count))
                discovery["ignored"] = .int(Int64(ignored))
            case .broadcast(let reason):
                discovery["reason"] = .string(reason)
            }
            let output: MeshValue = .map([
                "agents": list, "silent": .list(collected.silent.map { .string($0.description) }),
                "unreachable": .list(collected.unreachable.map { .string($0.description) }), "ended": .string(collected.ended.rawValue),
                "discovery": .map(discovery), "elapsed_ms": .int(elapsed.wholeMilliseconds),
            ])
            print(output.json)
        } else {
            print(Self.table(objects, extra: self.fact), terminator: "")
        }
        if objects.isEmpty {
            switch (collected.discovery, collected.ended) {
            case (.registry(_, let agents, _), _) where agents.isEmpty:
                Self.note("no agent answered: the coordinator knows no live agent")
            case (_, .allLiveAnswered) where collected.silent.isEmpty && collected.unreachable.isEmpty:
                Self.note("no agent matched (every live agent answered)")
            default:
                Self.note("no agent answered within \(self.timeout)")
            }
            throw ExitCode(1)
        }
    }

    /// How long the coordinator may take to say who is live before the query is broadcast.
    static let registryTimeout: Duration = .milliseconds(500)

    /// What one `facts` gathered, and how.
    struct Collected {
        var answers: QueryAnswers
        var silent: [AgentName]
        var unreachable: [AgentName]
        var ended: CollectionEnd
        var discovery: AgentDiscovery

        func summary(elapsed: Duration) -> String {
            let how: String
            switch self.discovery {
            case .registry(let coordinator, let agents, _): how = "asked the \(agents.count) live agent(s) of \(coordinator)"
            case .broadcast(let reason): how = "broadcast (\(reason))"
            }
            return "\(how); ended: \(self.ended.rawValue) after \(RemoteRunCommand.seconds(elapsed)), \(self.answers.agents.count) answered"
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

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("conductor facts: \(message)\n".utf8))
    }

    static func fail(_ message: String) -> Never {
        Self.note(message)
        Foundation.exit(2)
    }
}
