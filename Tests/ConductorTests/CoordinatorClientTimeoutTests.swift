import Agent
import Conductor
import Foundation
import Mesh
import MeshClient
import Testing

/// The client's timeouts come from one sweeper per client (not a timer per call): a call
/// that gets no answer fails with `.timeout` soon after its deadline, every time, also
/// after the sweeper parked because nothing was waiting.
@Suite(.timeLimit(.minutes(1)))
struct CoordinatorClientTimeoutTests {
    @Test func aCallWithoutAnswerTimesOutEachTimeAndOthersStillWork() async throws {
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator { coordinator in
                coordinator.register(method: "never") { _ in
                    try? await Task.sleep(for: .seconds(20))
                    return .success(MethodResponse(arguments: [:]))
                }
                let client = try await harness.client()
                for round in 0..<3 {
                    let started = ContinuousClock.now
                    await #expect {
                        _ = try await client.call("never", arguments: [:], timeout: .milliseconds(200))
                    } throws: { error in
                        (error as? CoordinatorCallError)?.code == .timeout
                    }
                    let waited = ContinuousClock.now - started
                    // Not before its deadline; late by the sweep interval (25 ms) plus what a loaded machine adds.
                    #expect(waited >= .milliseconds(200) && waited < .seconds(8), "round \(round): \(waited)")
                    // Idle in between, so the sweeper parks and must be woken by the next call.
                    try await Task.sleep(for: .milliseconds(100))
                }
                let status = try await client.status(lock: "free")
                #expect(status.holders.isEmpty)
                await client.close()
            }
        }
    }

    @Test func closingFailsAWaitingCallAtOnce() async throws {
        try await CoordinationHarness.with(.embedded) { harness in
            try await harness.withCoordinator { coordinator in
                coordinator.register(method: "never") { _ in
                    try? await Task.sleep(for: .seconds(20))
                    return .success(MethodResponse(arguments: [:]))
                }
                let client = try await harness.client()
                let started = ContinuousClock.now
                let call = Task { try await client.call("never", arguments: [:], timeout: .seconds(30)) }
                try await Task.sleep(for: .milliseconds(100))
                await client.close()
                await #expect {
                    _ = try await call.value
                } throws: { error in
                    (error as? CoordinatorCallError)?.code == .bus
                }
                #expect(ContinuousClock.now - started < .seconds(10))
                await #expect(throws: CoordinatorCallError.self) {
                    _ = try await client.call("never", arguments: [:], timeout: .seconds(1))
                }
            }
        }
    }
}
