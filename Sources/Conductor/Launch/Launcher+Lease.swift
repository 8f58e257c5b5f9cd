import Foundation

extension Launcher {
    /// How long one grant or renewal of the launch lock lasts. Short, so a holder on
    /// another host that dies frees the deployment soon (one on this host frees it at
    /// once: the store sees its pid gone); renewed every third of it while a launch runs,
    /// so a launch may take as long as its budgets allow.
    public static let launchLockLease: Duration = .seconds(60)

    /// Runs `body` holding the launch lock of `deployment@environment`, renewing the lease
    /// while it runs, and releases it at the end, whatever the outcome. When a renewal
    /// finds the lock taken over (our lease ran out, say, because the machine was
    /// suspended), `body` is cancelled and this throws `.lockLost`: whoever holds the lock
    /// now owns the deployment, and we must not record or send anything more for it.
    func withLaunchLock<Result: Sendable>(
        deployment: String, environment: String, lease: Duration = Launcher.launchLockLease,
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let actor = self.options.actor
        let store = self.store
        let granted = try await store.acquireLaunchLock(
            deployment: deployment, environment: environment, holder: .thisProcess(), lease: lease, actor: actor)
        let outcome: Swift.Result<Result, any Error> = await withTaskGroup(of: LeaseEvent<Result>.self) { group in
            group.addTask {
                do {
                    return .finished(.success(try await body()))
                } catch {
                    return .finished(.failure(error))
                }
            }
            group.addTask {
                var current = granted
                while !Task.isCancelled {
                    try? await Task.sleep(for: lease / 3)
                    if Task.isCancelled { break }
                    do {
                        current = try await store.renewLaunchLock(current, for: lease)
                    } catch let error as StateStoreError where error.code == .lockLost {
                        return .lost(error)
                    } catch {
                        // A busy or briefly unreadable database: the lease still has two
                        // thirds to run, so try again at the next tick.
                        continue
                    }
                }
                return .renewing
            }
            var finished: Swift.Result<Result, any Error> = .failure(CancellationError())
            var lost: StateStoreError?
            for await event in group {
                switch event {
                case .finished(let result):
                    finished = result
                case .lost(let error):
                    lost = error
                case .renewing:
                    break
                }
                group.cancelAll()
            }
            return lost.map { .failure($0) } ?? finished
        }
        if case .failure(let error as StateStoreError) = outcome, error.code == .lockLost { throw error }
        try? await store.releaseLaunchLock(granted, actor: actor)
        return try outcome.get()
    }
}

private enum LeaseEvent<Result: Sendable>: Sendable {
    case finished(Swift.Result<Result, any Error>)
    case lost(StateStoreError)
    case renewing
}
