#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// SIGINT and SIGTERM caught from the moment it is made, however the process was started
/// (a background job of a non-interactive shell inherits SIGINT ignored: watched here, it
/// is caught all the same), and kept until someone asks. Make it before anything is
/// started that a signal must stop.
public final class SignalWatch: Sendable {
    private final class Received: Sendable {
        private struct State {
            var signal: Int32?
            var waiters: [UInt64: CheckedContinuation<Int32?, Never>] = [:]
            var nextWaiter: UInt64 = 0
        }

        private let state = Mutex(State())

        var signal: Int32? { self.state.withLock { $0.signal } }

        func fire(_ number: Int32) {
            let (signal, waiting) = self.state.withLock { state in
                if state.signal == nil { state.signal = number }
                defer { state.waiters = [:] }
                return (state.signal!, Array(state.waiters.values))
            }
            for continuation in waiting { continuation.resume(returning: signal) }
        }

        /// The signal; nil when the waiting task was cancelled first.
        func wait() async -> Int32? {
            let id = self.state.withLock { state in
                defer { state.nextWaiter += 1 }
                return state.nextWaiter
            }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
                    let answer: Int32?? = self.state.withLock { state in
                        if let signal = state.signal { return .some(signal) }
                        if Task.isCancelled { return .some(nil) }
                        state.waiters[id] = continuation
                        return .none
                    }
                    if let answer { continuation.resume(returning: answer) }
                }
            } onCancel: {
                let continuation = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                continuation?.resume(returning: nil)
            }
        }
    }

    private let received: Received
    /// Kept only to stay alive for as long as the watch.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]

    public init(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        let received = Received()
        self.received = received
        self.sources = signals.map { number in
            // The source receives it; the default action (or an inherited SIG_IGN) must not.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { received.fire(number) }
            source.resume()
            return source
        }
    }

    /// The first signal received, if any.
    public var caught: Int32? { self.received.signal }

    /// Waits for the first signal (returns at once if one came already); nil when the
    /// waiting task is cancelled first.
    public func wait() async -> Int32? { await self.received.wait() }

    /// The shell's exit code for a process the signal ended (130 for SIGINT, 143 for SIGTERM).
    public static func exitCode(_ signal: Int32) -> Int32 { 128 + signal }

    /// "SIGINT", "SIGTERM".
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(signal)"
        }
    }
}
