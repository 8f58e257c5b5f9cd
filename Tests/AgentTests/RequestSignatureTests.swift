import AMQPClient
import Agent
import Foundation
import Mesh
import MeshClient
import NIOCore
import Testing

/// Signed `run` and `apply_job` requests: what is accepted, and why everything else is not.
@Suite struct RequestSignatureTests {
    static let agent = "conductor:agent:sig-test"
    static let now: Int64 = 1_800_000_000_000

    /// A run request as it leaves the console and as the agent reads it off the wire
    /// (headers and body through AMQP properties and bytes).
    static func signedRun(_ signer: RequestSigner, agent: String = agent, expiresAt: Int64 = now + 60_000, nonce: String = "n-1") throws -> MeshMessage {
        // A whole-number double (timeout 30.0) reads back as an integer: the canonical form covers it.
        let call = try MethodRequest(methodName: MeshMethod.run, encoding: RunRequest(command: .argv(["/bin/true"]), timeoutSeconds: 30.0))
        var message = try MeshMessage(opcode: .methodRequest, encoding: call)
        message.replyTo = "reply"
        signer.sign(&message, agent: agent, method: MeshMethod.run, expiresAt: expiresAt, nonce: nonce)
        return try Self.overTheWire(message)
    }

    static func overTheWire(_ message: MeshMessage) throws -> MeshMessage {
        try MeshMessage(properties: message.properties(), body: message.bodyBuffer())
    }

    static func refusal(_ message: MeshMessage, keys: [RequestSigner.PublicKey], agent: String = agent, method: String = MeshMethod.run, now: Int64 = now) -> String? {
        do {
            _ = try RequestSignature.verify(message, agent: agent, method: method, trustedKeys: keys, now: now)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test func aSignedRequestIsAcceptedAfterTheWire() throws {
        let signer = RequestSigner()
        let message = try Self.signedRun(signer)
        let verified = try RequestSignature.verify(message, agent: Self.agent, method: MeshMethod.run, trustedKeys: [signer.publicKey], now: Self.now)
        #expect(verified == RequestSignature.Verified(nonce: "n-1", expiresAt: Self.now + 60_000))
    }

    @Test func everythingElseIsRefusedWithItsReason() throws {
        let signer = RequestSigner()
        let keys = [signer.publicKey]
        let message = try Self.signedRun(signer)

        var unsigned = message
        for header in [RequestSignature.signatureHeader, RequestSignature.keyHeader, RequestSignature.expiresHeader, RequestSignature.nonceHeader] {
            unsigned.extraHeaders[header] = nil
        }
        #expect(Self.refusal(unsigned, keys: keys) == "it is not signed")
        #expect(Self.refusal(message, keys: [RequestSigner().publicKey])?.contains("which this agent does not trust") == true)
        #expect(Self.refusal(message, keys: keys, agent: "conductor:agent:other")?.contains("does not match") == true)
        #expect(Self.refusal(message, keys: keys, method: MeshMethod.applyJob)?.contains("does not match") == true)
        #expect(Self.refusal(message, keys: keys, now: Self.now + 60_001)?.contains("expired") == true)

        var altered = message
        altered.body = try MeshValue(json: message.body.json.replacingOccurrences(of: "/bin/true", with: "/bin/rm"))
        #expect(Self.refusal(altered, keys: keys)?.contains("does not match") == true)

        var longer = message
        longer.extraHeaders[RequestSignature.expiresHeader] = .int(Self.now + 120_000)
        #expect(Self.refusal(longer, keys: keys)?.contains("does not match") == true)

        let farFuture = try Self.signedRun(signer, expiresAt: Self.now + RequestSigner.jobLifetime + RequestSignature.maximumClockSkew + 1)
        #expect(Self.refusal(farFuture, keys: keys) == "its expiry is too far in the future")
    }

    @Test func aNonceIsAdmittedOnceAndALiveOneIsNeverForgotten() {
        var replays = ReplayGuard(capacity: 3)
        let first = RequestSignature.Verified(nonce: "a", expiresAt: Self.now + 1000)
        #expect(replays.admit(first, now: Self.now) == .admitted)
        #expect(replays.admit(first, now: Self.now + 10) == .replayed)
        #expect(replays.admit(.init(nonce: "b", expiresAt: Self.now + 50), now: Self.now) == .admitted)
        #expect(replays.admit(.init(nonce: "c", expiresAt: Self.now + 50), now: Self.now) == .admitted)
        // Full of live nonces: a new one is refused, none is forgotten, a replay is still one.
        #expect(replays.admit(.init(nonce: "d", expiresAt: Self.now + 500), now: Self.now + 10) == .full)
        #expect(replays.admit(first, now: Self.now + 10) == .replayed)
        // Once some expired there is room again.
        #expect(replays.admit(.init(nonce: "d", expiresAt: Self.now + 500), now: Self.now + 60) == .admitted)
        #expect(replays.expiries.keys.sorted() == ["a", "d"])
        #expect(replays.admit(first, now: Self.now + 60) == .replayed)
        replays.forget("d")
        #expect(replays.admit(.init(nonce: "d", expiresAt: Self.now + 500), now: Self.now + 60) == .admitted)
    }

    @Test func theKeyFileIsMadeOnceAndPrivate() throws {
        let directory = NSTemporaryDirectory() + "conductor-keys-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = RequestSigner.path(stateDirectory: directory)
        let made = try RequestSigner.loadOrCreate(at: path)
        let again = try RequestSigner.loadOrCreate(at: path)
        #expect(made.publicKey == again.publicKey)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try RequestSigner.PublicKey(made.publicKey.description) == made.publicKey)

        try "not a key".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RequestSignature.Refusal.self) { try RequestSigner.loadOrCreate(at: path) }
        #expect(throws: RequestSignature.Refusal.self) { try RequestSigner.PublicKey("ed25519:short") }
        #expect(throws: RequestSignature.Refusal.self) { try RequestSigner.PublicKey("rsa:AAAA") }
    }
}

/// An agent that trusts a key, on a real bus: unsigned and replayed runs are refused, a
/// signed one runs, and so does a signed job.
@Suite("Signed requests end to end", .timeLimit(.minutes(1)))
struct SignedRequestEndToEndTests {
    @Test func anAgentWithATrustedKeyRunsOnlySignedRequests() async throws {
        let bus = try await TestBus.start(.embedded)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let signer = RequestSigner()
        var configuration = try bus.agentConfiguration(instance: uniqueInstance("signed"), state: directory)
        configuration.trustedKeys = [signer.publicKey]
        let unsignedConsole = try await bus.console()
        let signedConsole = try await MeshConsole.connect(AMQPConnectionConfiguration(url: bus.conductorURL), signer: signer)
        let watch = try await signedConsole.watchHeartbeats()
        do {
            try await withAgent(configuration) { agent in
                let name = agent.name
                #expect(try await watch.next(timeout: .seconds(10)) { $0.name == name } != nil)
                let marker = directory.path + "/ran"
                let run = try MethodRequest(methodName: MeshMethod.run, encoding: RunRequest(command: .argv(["/bin/sh", "-c", "echo x >> \(marker)"])))

                let refused = try #require(try await unsignedConsole.call(run, on: agent.name, timeout: .seconds(10)))
                #expect(refused.exceptionBody?.code == .forbidden)
                #expect(refused.exceptionBody?.text == "'run' is refused: it is not signed")
                #expect(!FileManager.default.fileExists(atPath: marker))

                let accepted = try #require(try await signedConsole.call(run, on: agent.name, timeout: .seconds(10)))
                #expect(accepted.opcode == .methodResponse, "\(accepted.body)")
                #expect(directory.read("ran") == "x\n")

                // The same signed message published again (a replay) does not run again.
                var replay = try MeshMessage(opcode: .methodRequest, encoding: run)
                replay.userID = signedConsole.userID
                signer.sign(&replay, agent: name.description, method: MeshMethod.run, expiresAt: RequestSigner.now() + 60_000, nonce: "replayed")
                for attempt in 0..<2 {
                    let replyQueue = try await signedConsole.declareReplyQueue()
                    replay.replyTo = replyQueue
                    replay.correlationID = "replay-\(attempt)"
                    try signedConsole.publish(replay, exchange: QMF.directExchange, routingKey: name.description)
                    let answer = try await signedConsole.collect(replyQueue: replyQueue, correlationID: "replay-\(attempt)", timeout: .seconds(10)) { !$0.isEmpty }
                    if attempt == 0 {
                        #expect(answer.first?.opcode == .methodResponse)
                    } else {
                        #expect(answer.first?.exceptionBody?.text == "'run' is refused: it was seen before (a replay)")
                    }
                }
                #expect(directory.read("ran") == "x\nx\n")

                // Jobs: signed ones run, unsigned ones are refused.
                let job = ConfigurationJob(jobID: "signed-job", services: [ServiceSpec(name: "s", script: "echo job >> \(marker)")])
                let jobReplies = try await signedConsole.declareReplyQueue()
                try await signedConsole.sendJob(job, to: name, replyQueue: jobReplies, correlationID: "job-1")
                let done = try await signedConsole.collect(replyQueue: jobReplies, correlationID: "job-1", timeout: .seconds(15)) { !$0.isEmpty }
                #expect(try done.first?.decodeBody(MethodResponse.self).decodeArguments(JobResult.self).status == .succeeded)
                let unsignedJob = ConfigurationJob(jobID: "unsigned-job", services: [ServiceSpec(name: "s", script: "echo bad >> \(marker)")])
                let unsignedReplies = try await unsignedConsole.declareReplyQueue()
                try await unsignedConsole.sendJob(unsignedJob, to: name, replyQueue: unsignedReplies, correlationID: "job-2")
                let refusedJob = try await unsignedConsole.collect(replyQueue: unsignedReplies, correlationID: "job-2", timeout: .seconds(15)) { !$0.isEmpty }
                #expect(refusedJob.first?.exceptionBody?.text == "'apply_job' is refused: it is not signed")
                #expect(directory.read("ran") == "x\nx\njob\n")
            }
        } catch {
            try? await unsignedConsole.close()
            try? await signedConsole.close()
            await bus.stop()
            throw error
        }
        try? await unsignedConsole.close()
        try? await signedConsole.close()
        await bus.stop()
    }

    /// The nonce of an admitted signed `run` is on disk: the same request, captured and
    /// published again into the restarted agent before it expires, is refused and not run.
    @Test func aSignedRunReplayedIntoARestartedAgentIsRefused() async throws {
        let bus = try await TestBus.start(.embedded)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let signer = RequestSigner()
        var configuration = try bus.agentConfiguration(instance: uniqueInstance("restarted"), state: directory)
        configuration.trustedKeys = [signer.publicKey]
        let console = try await MeshConsole.connect(AMQPConnectionConfiguration(url: bus.conductorURL), signer: signer)
        do {
            let watch = try await console.watchHeartbeats()
            let name = try AgentName(instance: try #require(configuration.instanceID))
            let marker = directory.path + "/ran"
            let run = try MethodRequest(methodName: MeshMethod.run, encoding: RunRequest(command: .argv(["/bin/sh", "-c", "echo x >> \(marker)"])))
            var captured = try MeshMessage(opcode: .methodRequest, encoding: run)
            captured.userID = console.userID
            signer.sign(&captured, agent: name.description, method: MeshMethod.run, expiresAt: RequestSigner.now() + 600_000, nonce: UUID().uuidString)
            let replayed = captured
            for start in 1...2 {
                try await withAgent(configuration) { agent in
                    let epoch = agent.epoch
                    #expect(try await watch.next(timeout: .seconds(10)) { $0.name == name && $0.epoch == epoch } != nil, "start \(start)")
                    let answer = try await console.request(replayed, exchange: QMF.directExchange, routingKey: name.description, timeout: .seconds(10)) { !$0.isEmpty }
                    if start == 1 {
                        #expect(answer.first?.opcode == .methodResponse, "\(answer.map(\.body))")
                    } else {
                        #expect(answer.first?.exceptionBody?.code == .forbidden, "\(answer.map(\.body))")
                        #expect(answer.first?.exceptionBody?.text == "'run' is refused: it was seen before (a replay)")
                    }
                }
            }
            #expect(directory.read("ran") == "x\n", "the replay ran")
            try await console.deleteJobInbox(of: name)
        } catch {
            try? await console.close()
            await bus.stop()
            throw error
        }
        try? await console.close()
        await bus.stop()
    }
}
