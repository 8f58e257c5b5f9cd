import Foundation
import Testing

@testable import Conductor

/// Standby coordinators' election on PostgreSQL: one lease row per scope whose epoch fences
/// every write of the active coordinator (PostgresStateStore+Leadership.swift).
@Suite("Coordinator leadership on PostgreSQL")
struct LeadershipTests {
    static var postgres: [StoreKind] { StoreKind.available.filter { $0 == .postgres } }

    /// Three coordinators campaign on a fresh state: one wins with epoch 1, the others see it
    /// and stand by; its renewals keep the epoch; the roster names the active one first.
    @Test(arguments: postgres) func oneOfThreeWinsAndTheOthersStandBy(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try #require(try await bed.open() as? PostgresStateStore)
        let coordinators = (0..<3).map { CoordinatorIdentity(host: "h\($0)", pid: Int32(100 + $0)) }
        let rounds = try await withThrowingTaskGroup(of: (CoordinatorIdentity, LeaderLease, Bool).self) { group in
            for me in coordinators {
                group.addTask {
                    let (lease, mine) = try await store.campaign(scope: "main", as: me, lease: .seconds(600))
                    return (me, lease, mine)
                }
            }
            var rounds: [(CoordinatorIdentity, LeaderLease, Bool)] = []
            for try await round in group { rounds.append(round) }
            return rounds
        }
        let winners = rounds.filter(\.2)
        try #require(winners.count == 1)
        let winner = winners[0]
        #expect(winner.1.epoch == 1 && winner.1.holder == winner.0.id && winner.1.host == winner.0.host)
        #expect(rounds.allSatisfy { $0.1.holder == winner.0.id && $0.1.epoch == 1 })

        let renewed = try #require(try await store.renewLeadership(winner.1, for: .seconds(600)))
        #expect(renewed.epoch == 1 && renewed.expiresAt >= winner.1.expiresAt)
        let again = try await store.campaign(scope: "main", as: winner.0, lease: .seconds(600))
        #expect(again.mine && again.lease.epoch == 1)

        let roster = try await store.roster(scope: "main")
        #expect(roster.leader?.holder == winner.0.id && !roster.leaseLapsed)
        #expect(roster.members.map(\.holder).first == winner.0.id)
        #expect(Set(roster.members.map(\.holder)) == Set(coordinators.map(\.id)))
        #expect(roster.members.filter(\.active).count == 1)
        // Another scope has its own election.
        #expect(try await store.campaign(scope: "other", as: coordinators[1], lease: .seconds(600)).mine)
        await store.close()
        await bed.dispose()
    }

    /// A lease that lapses is taken with the next epoch; the old holder's renewal is refused
    /// and so is every write through its fence, while the new holder's writes go through. A
    /// standby's store (no epoch) writes nothing.
    @Test(arguments: postgres) func aLapsedLeaderIsFencedOut(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let old = CoordinatorIdentity(host: "old", pid: 1)
        let new = CoordinatorIdentity(host: "new", pid: 2)
        let oldFence = LeaderFence(scope: "main")
        let newFence = LeaderFence(scope: "main")
        let oldStore = try #require(try await bed.location.open(stateDirectory: bed.directory.url.path, keyFile: bed.keyFile, fence: oldFence) as? PostgresStateStore)
        let newStore = try #require(try await bed.location.open(stateDirectory: bed.directory.url.path, keyFile: bed.keyFile, fence: newFence) as? PostgresStateStore)

        // Standing by: refused.
        _ = await expectStateError(.fenced) { _ = try await oldStore.ensureDeployment("shop", environment: "prod", actor: stateTestActor) }

        let first = try await oldStore.campaign(scope: "main", as: old, lease: .milliseconds(300))
        try #require(first.mine)
        oldFence.hold(first.lease.epoch)
        _ = try await oldStore.ensureDeployment("shop", environment: "prod", actor: stateTestActor)

        // The new one stands by until the 300 ms lease lapses (the server's clock), then takes it.
        var taken: LeaderLease?
        for _ in 0..<200 where taken == nil {
            let round = try await newStore.campaign(scope: "main", as: new, lease: .seconds(600))
            if round.mine { taken = round.lease } else { try await Task.sleep(for: .milliseconds(50)) }
        }
        let lease = try #require(taken)
        #expect(lease.epoch == first.lease.epoch + 1 && lease.holder == new.id)
        newFence.hold(lease.epoch)

        #expect(try await oldStore.renewLeadership(first.lease, for: .seconds(600)) == nil)
        let refused = await expectStateError(.fenced) {
            _ = try await oldStore.setDeploymentStatus("shop", environment: "prod", to: .launching, reason: nil, actor: stateTestActor)
        }
        #expect(refused?.message.contains("taken over") == true)
        _ = await expectStateError(.fenced) { try await oldStore.reserveTokens(through: 10) }
        #expect(try await newStore.deployment("shop", environment: "prod")?.status == .recorded)
        _ = try await newStore.setDeploymentStatus("shop", environment: "prod", to: .launching, reason: nil, actor: stateTestActor)
        try await newStore.reserveTokens(through: 10)
        #expect(try await bed.count("SELECT COUNT(*) FROM audit WHERE action = 'deployment.status'") == 1)
        await oldStore.close()
        await newStore.close()
        await bed.dispose()
    }

    /// SIGTERM: the active one resigns, and a standby takes over at its next campaign rather
    /// than after the (long) lease; the epoch still grows.
    @Test(arguments: postgres) func aResignedLeaseIsTakenAtOnce(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try #require(try await bed.open() as? PostgresStateStore)
        let first = CoordinatorIdentity(host: "a", pid: 1)
        let second = CoordinatorIdentity(host: "b", pid: 2)
        let held = try await store.campaign(scope: "main", as: first, lease: .seconds(600))
        #expect(held.mine)
        #expect(try await store.campaign(scope: "main", as: second, lease: .seconds(600)).mine == false)
        try await store.resignLeadership(held.lease)
        let next = try await store.campaign(scope: "main", as: second, lease: .seconds(600))
        #expect(next.mine && next.lease.epoch == held.lease.epoch + 1)
        let roster = try await store.roster(scope: "main")
        #expect(roster.members.map(\.holder) == [second.id])
        await store.close()
        await bed.dispose()
    }

    /// Many campaigns at once on a lapsed lease: exactly one takes it.
    @Test(arguments: postgres) func racingCampaignsOnALapsedLeaseHaveOneWinner(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        var stores: [PostgresStateStore] = []
        for _ in 0..<4 { stores.append(try #require(try await bed.open() as? PostgresStateStore)) }
        let gone = try await stores[0].campaign(scope: "main", as: CoordinatorIdentity(host: "gone", pid: 9), lease: .seconds(600))
        try await stores[0].resignLeadership(gone.lease)
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for (index, store) in stores.enumerated() {
                for round in 0..<3 {
                    group.addTask {
                        try await store.campaign(scope: "main", as: CoordinatorIdentity(host: "c\(index)-\(round)", pid: 1), lease: .seconds(600)).mine
                    }
                }
            }
            var count = 0
            for try await mine in group where mine { count += 1 }
            return count
        }
        #expect(winners == 1)
        #expect(try await stores[0].roster(scope: "main").leader?.epoch == gone.lease.epoch + 1)
        for store in stores { await store.close() }
        await bed.dispose()
    }
}
