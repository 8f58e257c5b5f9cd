import AMQPClient
import Foundation
import Mesh
import MeshClient

/// Everything `AgentService` needs to know before it starts. The CLI fills it from flags;
/// tests build it directly with temporary directories.
public struct AgentConfiguration: Sendable {
    public static let defaultStateDirectory = "/var/lib/conductor/agent"
    public static let defaultTrustedUser = "conductor"
    public static let instanceEnvironmentVariable = "CONDUCTOR_INSTANCE_ID"

    /// Where and as whom to connect. Reconnects and topology recovery are the client's.
    public var broker: AMQPConnectionConfiguration
    /// The instance part of the agent name; nil means "the UUID kept in the state directory".
    public var instanceID: String?
    /// Holds `instance-id`, `epoch`, `jobs/` (finished jobs, for idempotency) and
    /// `run-nonces` (signed runs admitted, against replays).
    public var stateDirectory: String
    /// Custom facts (Facter-style files and executables).
    public var factsDirectory: String
    public var heartbeatInterval: Duration
    /// How often statistics (memory, load) are refreshed; properties every ten of these.
    public var refreshInterval: Duration
    /// The AMQP user whose `user_id` may send `run` and `apply_job`. `guest` is accepted
    /// only because someone wrote it here (local development).
    public var trustedUser: String
    /// When not empty, `run` and `apply_job` must also be signed by one of these keys
    /// (`conductor agent --trusted-key`, `CONDUCTOR_TRUSTED_KEYS`; see `RequestSignature`).
    public var trustedKeys: [RequestSigner.PublicKey] = []
    /// How long a refused login or missing provisioned queues are retried before the agent
    /// gives up: a coordinator bringing its bus back (`fwd`) makes them again.
    public var refusalPatience: Duration = .seconds(120)
    /// On SIGTERM, how long a running job may go on before it is reported `interrupted`.
    public var shutdownGracePeriod: Duration
    /// Where facts are read from; tests point it at fixture trees.
    public var factSources: FactSources
    /// Responses longer than this many bytes are split into `partial` messages.
    public var maximumResponseBytes: Int

    public init(
        broker: AMQPConnectionConfiguration = AMQPConnectionConfiguration(),
        instanceID: String? = nil,
        stateDirectory: String = AgentConfiguration.defaultStateDirectory,
        factsDirectory: String = "/etc/conductor/facts.d",
        heartbeatInterval: Duration = .seconds(10),
        refreshInterval: Duration = .seconds(15),
        trustedUser: String = AgentConfiguration.defaultTrustedUser,
        shutdownGracePeriod: Duration = .seconds(30),
        factSources: FactSources? = nil,
        maximumResponseBytes: Int = 256 * 1024
    ) {
        self.broker = broker
        self.instanceID = instanceID
        self.stateDirectory = stateDirectory
        self.factsDirectory = factsDirectory
        self.heartbeatInterval = heartbeatInterval
        self.refreshInterval = refreshInterval
        self.trustedUser = trustedUser
        self.shutdownGracePeriod = shutdownGracePeriod
        var sources = factSources ?? FactSources()
        sources.customFactsDirectory = factsDirectory
        self.factSources = sources
        self.maximumResponseBytes = maximumResponseBytes
    }

    /// The broker user this agent logs in as, put in `user_id` of everything it sends (the
    /// broker refuses any other, so that is the proof of who sent an answer): the URL's user
    /// with PLAIN. Nil with EXTERNAL (a client certificate): the broker derives the user from
    /// the certificate in a way the agent cannot know (common name, or the whole DN as
    /// RabbitMQ does by default), and a wrong guess would get its channel closed.
    public var loginUser: String? {
        self.broker.authenticationMechanism == .plain ? self.broker.username : nil
    }

    /// The heartbeat interval in whole seconds (at least 1), as `_heartbeat_interval` says it.
    var heartbeatSeconds: Int64 {
        let (seconds, attoseconds) = self.heartbeatInterval.components
        return max(1, seconds + (attoseconds > 0 ? 1 : 0))
    }
}

/// Why an agent could not start or stopped. `message` is for the person running it.
public struct AgentError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { self.name }

        public static let stateDirectory = Code("state-directory")
        public static let invalidInstance = Code("invalid-instance")
        public static let busLost = Code("bus-lost")
        /// The request queue was not provisioned and the login may not declare its own.
        public static let queuesMissing = Code("queues-missing")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
