import AMQPClient
import Foundation
import Mesh
import MeshClient

/// The caller's side of the launch methods: `conductor launch` and `terminate` talking to
/// a running coordinator over the bus.
public struct LaunchCoordinatorClient: Sendable {
    public let console: MeshConsole
    public let coordinator: AgentName
    /// How long one call may take before the coordinator counts as not answering.
    public var timeout: Duration

    public init(console: MeshConsole, scope: String = Coordinator.defaultScope, timeout: Duration = .seconds(10)) throws {
        self.console = console
        self.coordinator = try Coordinator.name(scope: scope)
        self.timeout = timeout
    }

    /// What the coordinator launched; nil when no coordinator answered within `timeout`
    /// (so this doubles as "is one there").
    public func list(timeout: Duration) async throws -> LaunchList? {
        do {
            return try await self.call(LaunchMethod.list, [String: String](), timeout: timeout)
        } catch let error as LaunchError where error.code == .unreachable {
            return nil
        }
    }

    public func submit(_ submission: LaunchSubmission) async throws -> LaunchTicket {
        try await self.call(LaunchMethod.launch, submission, timeout: self.timeout)
    }

    public func progress(_ launchID: String, since: Int) async throws -> LaunchProgress {
        try await self.call(LaunchMethod.progress, LaunchProgressRequest(launchID: launchID, since: since), timeout: self.timeout)
    }

    public func terminate(deployment: String, environment: String) async throws -> TerminateResult {
        // Stopping instances takes their grace period: more than a quick call.
        try await self.call(LaunchMethod.terminate, TerminateRequest(deployment: deployment, environment: environment), timeout: .seconds(60))
    }

    private func call<Result: Decodable>(_ method: String, _ arguments: some Encodable, timeout: Duration) async throws -> Result {
        let request = try MethodRequest(methodName: method, encoding: arguments)
        guard let reply = try await self.console.call(request, on: self.coordinator, timeout: timeout) else {
            throw LaunchError(.unreachable, "no coordinator \(self.coordinator) answered \(method) within \(timeout)")
        }
        if reply.opcode == .exception {
            let text = (try? reply.decodeBody(ExceptionBody.self)).map(\.text) ?? "exception"
            throw LaunchError(.refused, text)
        }
        do {
            return try reply.decodeBody(MethodResponse.self).decodeArguments(Result.self)
        } catch {
            throw LaunchError(.refused, "unreadable \(method) answer from \(self.coordinator): \(error)")
        }
    }
}

extension LaunchError.Code {
    /// No coordinator answered.
    public static let unreachable = LaunchError.Code("unreachable")
    /// The coordinator answered with an exception; the message is its text.
    public static let refused = LaunchError.Code("refused")
}
