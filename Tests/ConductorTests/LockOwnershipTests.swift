import AMQPClient
import Conductor
import Foundation
import Mesh
import MeshClient
import Testing

/// A lock belongs to its holder (issue 13): the fencing token is public (`lock_status`
/// shows it), so renewing or releasing needs the holder key its grant handed out, and only
/// the coordinator's trusted user may force a release, which the state store audits. Each
/// runs on the embedded broker and on RabbitMQ when it is configured.
@Suite(.timeLimit(.minutes(1)))
struct LockOwnershipTests {
    /// Whether `body` was refused with 403, and its text.
    static func forbidden(_ body: () async throws -> LockTokenResult) async -> String? {
        do {
            let result = try await body()
            Issue.record("not refused: \(result)")
            return nil
        } catch let error as CoordinatorCallError {
            #expect(error.exception?.code == .forbidden, "\(error)")
            return error.message
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test(arguments: LaunchBusKind.all) func theTokenAloneNeitherReleasesNorRenewsAHeldLock(bus: LaunchBusKind) async throws {
        try await CoordinationHarness.with(bus) { harness in
            let (logger, log) = CapturedLog.logger()
            try await harness.withCoordinator(logger: logger) { _ in
                let holder = try await harness.client()
                let other = try await harness.otherClient()
                let grant = try await holder.acquire(lock: "db", ttl: .seconds(40), wait: .zero, holder: "web-1:42")
                let key = try #require(grant.holderKey)
                #expect(key.count == 32, "128 bits in hex")
                // What anyone can see: the token, who acquired it, never the key.
                let status = try await other.status(lock: "db")
                #expect(status.holders.map(\.token) == [grant.token])
                #expect(status.holders.first?.acquiredBy == holder.userID)
                #expect(!String(decoding: try MeshValue(encoding: status).jsonBytes, as: UTF8.self).contains(key))
                // Someone else's grant on another lock: a real key, but not this token's.
                let elsewhere = try await other.acquire(lock: "other", ttl: .seconds(40), wait: .zero, holder: "other")
                async let waiter = other.acquire(lock: "db", ttl: .seconds(40), wait: .seconds(40), holder: "waiter")
                #expect(try await eventually { try await other.status(lock: "db").waiters == 1 })
                for attempt in [nil, "0123456789abcdef0123456789abcdef", elsewhere.holderKey] {
                    let text = await Self.forbidden { try await other.release(lock: "db", token: grant.token, holderKey: attempt) }
                    #expect(text?.contains("only its holder") == true, "\(text ?? "")")
                    _ = await Self.forbidden { try await other.renew(lock: "db", token: grant.token, holderKey: attempt, ttl: .milliseconds(100)) }
                }
                // The holder's own connection without the key is refused as well: the key is the proof.
                _ = await Self.forbidden { try await holder.release(lock: "db", token: grant.token, holderKey: nil) }
                let after = try await other.status(lock: "db")
                #expect(after.holders.map(\.token) == [grant.token] && after.waiters == 1, "a refused request changed the lock")
                #expect(after.holders[0].leaseRemainingMilliseconds > 20_000, "the refused renewal (100 ms) shortened the lease")
                // Each refusal is a warning naming the lock, the token and who asked.
                let refusals = log.all.filter { $0.contains("not the holder") }
                #expect(refusals.count == 7, "\(log.all)")
                #expect(refusals.allSatisfy { $0.contains("lock=db") && $0.contains("token=\(grant.token)") && $0.contains("user_id=") })
                #expect(refusals.contains { $0.contains("user_id=\(other.userID)") })
                // The holder, with its key: renews, then releases, and the waiter gets in.
                #expect(try await holder.renew(grant).held)
                #expect(try await holder.release(grant).held)
                let next = try await waiter
                #expect(next.token > grant.token && next.holderKey != key)
                _ = try await other.release(next)
                _ = try await other.release(elsewhere)
                await holder.close()
                await other.close()
            }
        }
    }

    /// The administrator's way out: the trusted user forces a release without the key, the
    /// store audits who forced whom, and the holder learns at its next renewal that it no
    /// longer holds the lock. The test RabbitMQ has one user, so there the coordinator
    /// trusts another name and that user's force is the refused one.
    @Test(arguments: LaunchBusKind.all) func onlyTheTrustedUserForcesAReleaseAndItIsAudited(bus: LaunchBusKind) async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await CoordinationHarness.with(bus) { harness in
            let store = try SQLiteStateStore(path: directory + "/state.sqlite")
            let (logger, log) = CapturedLog.logger()
            // Refused: a user other than the trusted one.
            try await harness.withCoordinator(store: store, trustedUser: harness.otherURL == nil ? "conductor-admin" : nil, logger: logger) { _ in
                let holder = try await harness.client()
                let other = try await harness.otherClient()
                let grant = try await holder.acquire(lock: "stuck", ttl: .seconds(40), wait: .zero, holder: "recipe", owned: false)
                let text = await Self.forbidden { try await other.forceRelease(lock: "stuck", token: grant.token) }
                #expect(text?.contains("not the coordinator's trusted user") == true, "\(text ?? "")")
                #expect(try await other.status(lock: "stuck").holders.map(\.token) == [grant.token])
                #expect(log.all.contains { $0.contains("forced lock release refused") && $0.contains("token=\(grant.token)") && $0.contains("user_id=\(other.userID)") })
                await holder.close()
                await other.close()
            }
            #expect(try await store.auditTrail(deployment: nil, environment: nil, limit: 10).filter { $0.action == "lock.force_release" }.isEmpty)
            // Allowed: the coordinator's own user (the one its agents trust), audited.
            try await harness.withCoordinator(store: store) { coordinator in
                let admin = try await harness.client()
                #expect(admin.userID == coordinator.trustedUser)
                let held = try #require(try await admin.status(lock: "stuck").holders.first)
                let forced = try await admin.forceRelease(lock: "stuck", token: held.token)
                #expect(forced.held)
                #expect(try await admin.status(lock: "stuck").holders.isEmpty)
                // A token that holds nothing: nothing to force, nothing audited.
                #expect(try await admin.forceRelease(lock: "stuck", token: held.token).held == false)
                let audit = try await store.auditTrail(deployment: nil, environment: nil, limit: 10).filter { $0.action == "lock.force_release" }
                #expect(audit.count == 1)
                #expect(audit.first?.actor == .amqpUser(admin.userID))
                #expect(audit.first?.subject == "coordinator-lock:stuck")
                #expect(audit.first?.detail?[path: "token"] == .int(held.token))
                #expect(audit.first?.detail?[path: "holder"] == .string("recipe"))
                #expect(audit.first?.detail?[path: "acquired_by"] == .string(admin.userID))
                await admin.close()
            }
        }
    }

    /// A held lock's key hash is in the state store: after a restart the holder still
    /// renews and releases with its key, and nobody does without it.
    @Test(arguments: LaunchBusKind.all) func keysSurviveACoordinatorRestart(bus: LaunchBusKind) async throws {
        let directory = try CoordinationHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await CoordinationHarness.with(bus) { harness in
            let path = directory + "/state.sqlite"
            let grant = try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                let grant = try await client.acquire(lock: "kept", ttl: .seconds(40), wait: .zero, holder: "recipe", owned: false)
                await client.close()
                return grant
            }
            try await harness.withCoordinator(store: try SQLiteStateStore(path: path)) { _ in
                let client = try await harness.client()
                let other = try await harness.otherClient()
                let status = try await other.status(lock: "kept")
                #expect(status.holders.map(\.token) == [grant.token])
                #expect(status.holders.first?.acquiredBy == client.userID)
                _ = await Self.forbidden { try await other.release(lock: "kept", token: grant.token, holderKey: nil) }
                _ = await Self.forbidden { try await other.renew(lock: "kept", token: grant.token, holderKey: HolderKey.random().hex) }
                #expect(try await client.renew(grant).held)
                #expect(try await client.release(grant).held)
                #expect(try await other.status(lock: "kept").holders.isEmpty)
                await client.close()
                await other.close()
            }
        }
    }
}
