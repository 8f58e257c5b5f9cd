import ArgumentParser
import Conductor
import Foundation
import Glibc

/// `conductor agent invite`: on the coordinator's machine, a one-time invitation for an
/// agent started by hand (docs/agent.md, "Enrolment").
struct AgentInviteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite",
        abstract: "Make a one-time invitation for an agent started by hand.",
        discussion: """
            Records an invitation for the agent with this instance id in the state directory (only \
            the SHA-256 of its token is kept) and prints the token and the `conductor agent enroll` \
            command to run on that machine. The coordinator that answers it must run with --http \
            on this state directory (`conductor serve --http ...`); it then makes the agent's own \
            broker login and queues. A token works once, until --valid-for has passed.
            """
    )

    @Option(name: .long, help: "The agent's instance id (its name is conductor:agent:<id>).")
    var instanceID: String

    @Option(name: .long, help: "Seconds the invitation stays valid.")
    var validFor: Double = 3600

    @OptionGroup var state: StateOptions

    @Flag(name: .long, help: "Print {\"instance_id\", \"token\", \"expires_in\"} as JSON.")
    var json = false

    func validate() throws {
        guard self.validFor >= 1, self.validFor <= 30 * 86_400 else { throw ValidationError("--valid-for must be between 1 second and 30 days") }
    }

    func run() async throws {
        let token: String
        do {
            let store = try await self.state.openStore()
            token = try await AgentEnrollment.invite(
                instanceID: self.instanceID, validFor: .milliseconds(Int64(self.validFor * 1000)), store: store, actor: .currentOSUser())
        } catch {
            FileHandle.standardError.write(Data("conductor agent invite: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if self.json {
            print(try LaunchCommand.json(Invitation(instanceID: self.instanceID, token: token, expiresIn: self.validFor)))
            return
        }
        print("invitation for conductor:agent:\(self.instanceID), valid for \(Int(self.validFor)) s, once:")
        print("  conductor agent enroll --url <the coordinator's --http URL> --token \(token) --state-dir <the agent's state directory>")
    }

    struct Invitation: Encodable {
        var instanceID: String
        var token: String
        var expiresIn: Double

        enum CodingKeys: String, CodingKey {
            case instanceID = "instance_id"
            case token
            case expiresIn = "expires_in"
        }
    }
}

/// `conductor agent enroll`: on the agent's machine, trades an invitation's token for the
/// agent's own login and writes it where `conductor agent` finds it.
struct AgentEnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Trade an invitation for this agent's own broker login.",
        discussion: """
            Sends the token to the coordinator's HTTP API (POST /agents/v1/enroll) and writes what \
            it answers (instance id, the bus URL with the agent's login, the trusted user and keys) \
            to <state-dir>/enrollment.json, mode 0600 in a 0700 directory. `conductor agent \
            --state-dir DIR` then starts from it when given no --broker. Exit status 0 when \
            enrolled, 1 otherwise (a used or expired token, an unreachable coordinator).
            """
    )

    @Option(name: .long, help: "The coordinator's HTTP API, http(s)://HOST:PORT (its --http).")
    var url: String

    @Option(name: .long, help: "The invitation's token (default: $CONDUCTOR_ENROLL_TOKEN).")
    var token: String?

    @Option(name: .long, help: "The agent's state directory.")
    var stateDir: String = "/var/lib/conductor/agent"

    @Option(name: .long, help: "CA file to check an https coordinator's certificate with (curl's --cacert).")
    var cacert: String?

    @Option(name: .long, help: "Seconds to wait for the coordinator.")
    var timeout: Double = 30

    func run() async throws {
        guard let token = self.token ?? ProcessInfo.processInfo.environment["CONDUCTOR_ENROLL_TOKEN"], !token.isEmpty else {
            FileHandle.standardError.write(Data("conductor agent enroll: give --token (or $CONDUCTOR_ENROLL_TOKEN)\n".utf8))
            throw ExitCode(1)
        }
        let grant: EnrollmentGrant
        do {
            grant = try await Self.post(url: self.url, token: token, cacert: self.cacert, timeout: self.timeout)
            try Self.write(grant, stateDirectory: self.stateDir)
        } catch {
            FileHandle.standardError.write(Data("conductor agent enroll: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print("enrolled as conductor:agent:\(grant.instanceID); start it with: conductor agent --state-dir \(self.stateDir)")
    }

    static func path(stateDirectory: String) -> String { stateDirectory + "/enrollment.json" }

    /// curl, as the phone-home instances use it: certificates checked, bounded in time.
    static func post(url: String, token: String, cacert: String?, timeout: Double) async throws -> EnrollmentGrant {
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        var arguments = ["-sS", "--max-time", "\(Int(max(1, timeout)))", "-X", "POST", "-H", "@-", "-w", "\n%{http_code}", base + "/agents/v1/enroll"]
        if let cacert { arguments += ["--cacert", cacert] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw EnrollError("cannot run /usr/bin/curl (apt-get install curl): \(error)")
        }
        // The token goes through stdin, not argv, so `ps` does not show it.
        input.fileHandleForWriting.write(Data("Authorization: Bearer \(token)\n".utf8))
        try? input.fileHandleForWriting.close()
        let body = output.fileHandleForReading.readDataToEndOfFile()
        let failure = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw EnrollError("the coordinator at \(base) did not answer: \(failure.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let text = String(decoding: body, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let json = Data(lines.dropLast().joined(separator: "\n").utf8)
        guard status == 200 else {
            let reason = ((try? JSONSerialization.jsonObject(with: json)) as? [String: Any])?["error"] as? String ?? String(decoding: json, as: UTF8.self)
            throw EnrollError("the coordinator refused the enrolment (\(status)): \(reason)")
        }
        do {
            return try JSONDecoder().decode(EnrollmentGrant.self, from: json)
        } catch {
            throw EnrollError("the coordinator's answer is not an enrolment: \(error)")
        }
    }

    /// Whole or not at all: a temporary file (0600) renamed over the old one.
    static func write(_ grant: EnrollmentGrant, stateDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(stateDirectory, 0o700)
        let path = Self.path(stateDirectory: stateDirectory)
        let temporary = path + ".tmp"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(grant)
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw EnrollError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw EnrollError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))") }
    }

    static func read(stateDirectory: String) throws -> EnrollmentGrant? {
        let path = Self.path(stateDirectory: stateDirectory)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(EnrollmentGrant.self, from: data)
        } catch {
            throw ValidationError("\(path) is not an enrolment `conductor agent enroll` wrote: \(error)")
        }
    }
}

struct EnrollError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
