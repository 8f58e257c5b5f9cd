import AMQPClient
import Agent
import ArgumentParser
import Foundation
import Logging
import MeshClient

/// `conductor agent`: the node agent (`run`, the default) and its enrolment (`invite`,
/// `enroll`). docs/agent.md.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent: facts, queries and jobs on the bus.",
        discussion: """
            `conductor agent [OPTIONS]` runs it (`conductor agent run --help` lists the options). \
            Started by hand on a machine a launch did not start, it gets a broker login of its own \
            by enrolment: `conductor agent invite` on the coordinator's machine, `conductor agent \
            enroll` on the agent's; without --broker it then starts from <state-dir>/enrollment.json.
            """,
        subcommands: [AgentRunCommand.self, AgentInviteCommand.self, AgentEnrollCommand.self],
        defaultSubcommand: AgentRunCommand.self
    )
}

/// `conductor agent [run]`: the node agent.
struct AgentRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the node agent: facts, queries and jobs on the bus (the default).",
        discussion: """
            Connects to the bus (retrying until the broker answers), heartbeats, answers fact \
            queries and agent locates, and runs `run` requests and configuration jobs sent by \
            the trusted user (and, with --trusted-key, signed by the coordinator's key: an unsigned, \
            altered, expired or replayed request is refused). Jobs wait in the durable queue conductor.agent.<instance>.jobs while \
            the agent is away; a job id that already finished is answered with its stored result. \
            SIGTERM or SIGINT: stop taking work, let a running job finish for --grace-period \
            seconds, else kill it and report it interrupted. Given a cluster's nodes (--broker \
            URL1,URL2,URL3 or repeated), it moves to the next node when its own goes away and \
            consumes its queues there (quorum queues on RabbitMQ). See docs/agent.md and docs/protocol.md. \
            Enrolled (`conductor agent enroll`), it starts from <state-dir>/enrollment.json when \
            given no --broker.
            """
    )

    @OptionGroup var bus: BusOptions

    @Option(name: .long, help: "Instance part of the agent name (default: $CONDUCTOR_INSTANCE_ID, else a UUID kept in the state directory).")
    var instanceID: String?

    @Option(name: .long, help: "Directory for the instance id, the epoch and finished jobs.")
    var stateDir: String = AgentConfiguration.defaultStateDirectory

    @Option(name: .long, help: "Custom facts: YAML/JSON/key=value files and executables.")
    var factsDir: String = "/etc/conductor/facts.d"

    @Option(name: .long, help: "Seconds between heartbeats.")
    var heartbeatInterval: Double = 10

    @Option(name: .long, help: "Seconds between refreshes of statistics (memory, load); properties every 20 of these.")
    var refreshInterval: Double = 15

    @Option(name: .long, help: "AMQP user whose user_id may send run requests and jobs ('guest' only for local development).")
    var trustedUser: String = AgentConfiguration.defaultTrustedUser

    @Option(
        name: .long,
        help: "Also require run requests and jobs to be signed by this key (ed25519:<base64>, as `conductor signing-key` prints it); repeat for several. Default: $CONDUCTOR_TRUSTED_KEYS (space-separated), else none.")
    var trustedKey: [String] = []

    @Option(name: .long, help: "Seconds a running job may go on after SIGTERM before it is killed and reported interrupted.")
    var gracePeriod: Double = 30

    @Option(name: .long, help: "Report this address as the ipaddress fact (default: $CONDUCTOR_IPADDRESS, else the primary interface's).")
    var ipaddress: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(self.logLevel)'")
        }
        for (flag, value) in [("--heartbeat-interval", self.heartbeatInterval), ("--refresh-interval", self.refreshInterval)] where !(value >= 0.1 && value <= 86_400) {
            throw ValidationError("\(flag) must be between 0.1 and 86400 seconds, got \(value)")
        }
        guard self.gracePeriod >= 0, self.gracePeriod <= 86_400 else {
            throw ValidationError("--grace-period must be between 0 and 86400 seconds")
        }
        guard !self.trustedUser.isEmpty else { throw ValidationError("--trusted-user must not be empty") }
        _ = try self.trustedKeys()
    }

    /// `--trusted-key`s, else those of $CONDUCTOR_TRUSTED_KEYS.
    func trustedKeys() throws -> [RequestSigner.PublicKey] {
        let texts = self.trustedKey.isEmpty
            ? (ProcessInfo.processInfo.environment["CONDUCTOR_TRUSTED_KEYS"] ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            : self.trustedKey
        do {
            return try texts.map { text throws(RequestSignature.Refusal) in try RequestSigner.PublicKey(text) }
        } catch {
            throw ValidationError("--trusted-key: \(error.reason)")
        }
    }

    /// `conductor launch`'s local provider gives each agent its loopback address this way.
    static var environmentIPAddress: String? {
        ProcessInfo.processInfo.environment["CONDUCTOR_IPADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        var (broker, source) = try self.bus.configuration()
        var instanceID = self.instanceID
        var trustedUser = self.trustedUser
        var trustedKeys = try self.trustedKeys()
        // Enrolled: its own login, name and whom to trust, unless a bus was given.
        if self.bus.broker == nil, ProcessInfo.processInfo.environment[BusOptions.environmentVariable]?.isEmpty ?? true,
            let grant = try AgentEnrollCommand.read(stateDirectory: self.stateDir)
        {
            do {
                broker = try AMQPConnectionConfiguration(url: grant.brokerURL)
            } catch {
                throw ValidationError("the broker URL in \(AgentEnrollCommand.path(stateDirectory: self.stateDir)) is not usable: \(error.message)")
            }
            source = AgentEnrollCommand.path(stateDirectory: self.stateDir)
            instanceID = instanceID ?? grant.instanceID
            trustedUser = grant.trustedUser
            if trustedKeys.isEmpty {
                trustedKeys = try grant.trustedKeys.map { text throws(RequestSignature.Refusal) in try RequestSigner.PublicKey(text) }
            }
        }
        var logger = Logger(label: "conductor.agent")
        logger.logLevel = Logger.Level(rawValue: self.logLevel) ?? .info
        var configuration = AgentConfiguration(
            broker: broker, instanceID: instanceID, stateDirectory: self.stateDir, factsDirectory: self.factsDir,
            heartbeatInterval: .milliseconds(Int64(self.heartbeatInterval * 1000)),
            refreshInterval: .milliseconds(Int64(self.refreshInterval * 1000)),
            trustedUser: trustedUser, shutdownGracePeriod: .milliseconds(Int64(self.gracePeriod * 1000)),
            factSources: FactSources(ipaddressOverride: self.ipaddress ?? Self.environmentIPAddress))
        configuration.trustedKeys = trustedKeys
        if configuration.trustedKeys.isEmpty {
            logger.notice("run requests and jobs are checked by user_id only; give --trusted-key to require the coordinator's signature")
        }
        let agent: AgentService
        do {
            agent = try AgentService(configuration: configuration, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("conductor agent: \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.info(
            "conductor agent starting",
            metadata: [
                "agent_name": "\(agent.name)", "agent_epoch": "\(agent.epoch)", "broker": "\(broker.redactedURL)", "broker_from": "\(source)",
                "state_dir": "\(self.stateDir)", "facts_dir": "\(self.factsDir)", "pid": "\(ProcessInfo.processInfo.processIdentifier)",
            ])
        do {
            try await agent.runUntilTerminated(logger: logger)
        } catch {
            FileHandle.standardError.write(Data("conductor agent: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
