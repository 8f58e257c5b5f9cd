import Foundation

/// Set once, when the agent is asked to stop; any number of tasks can wait for it.
/// Waiting is cancellable, so a task racing it against other work can be cancelled.
final class ShutdownSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var triggered = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var cancelled: Set<UInt64> = []
    private var nextWaiter: UInt64 = 0

    var isTriggered: Bool { self.lock.withLock { self.triggered } }

    func trigger() {
        let waiting = self.lock.withLock {
            self.triggered = true
            defer { self.waiters = [:] }
            return Array(self.waiters.values)
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns when triggered, or when the calling task is cancelled.
    func wait() async {
        let id = self.lock.withLock {
            defer { self.nextWaiter += 1 }
            return self.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.lock.withLock {
                    if self.triggered || self.cancelled.remove(id) != nil { return true }
                    self.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = self.lock.withLock {
                if let continuation = self.waiters.removeValue(forKey: id) { return continuation as CheckedContinuation<Void, Never>? }
                if !self.triggered { self.cancelled.insert(id) }
                return nil
            }
            continuation?.resume()
        }
    }
}
