#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// SIGINT and SIGTERM caught from the moment it is made, however the process was started
/// (a background job of a non-interactive shell inherits SIGINT ignored: watched here, it
/// is caught all the same), and kept until someone asks. Make it before anything is
/// started that a signal must stop.
///
/// A real `sigaction` handler writes the signal's number to a pipe that one thread reads:
/// unlike a dispatch signal source (a `signalfd` that only sees the signal if the thread
/// that made it blocks it, and an ignored signal is dropped when sent), it works from
/// whichever thread makes the watch.
public final class SignalWatch: Sendable {
    final class Received: Sendable {
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

    public init(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        let received = Received()
        self.received = received
        SignalRelay.shared.watch(signals, for: received)
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

/// The write end of the relay's pipe, for the signal handler (which may only make
/// async-signal-safe calls, and cannot capture anything). Set once, before any handler.
private nonisolated(unsafe) var relayDescriptor: Int32 = -1

private let relayHandler: @convention(c) (Int32) -> Void = { number in
    var byte = UInt8(truncatingIfNeeded: number)
    _ = write(relayDescriptor, &byte, 1)
}

/// One per process: the pipe, the handlers, and the thread that hands each signal to the
/// watches waiting for it.
private final class SignalRelay: Sendable {
    static let shared = SignalRelay()

    private let watches = Mutex<[Int32: [SignalWatch.Received]]>([:])

    private init() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // A full pipe must not block the handler: a signal then is dropped, not waited on.
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        relayDescriptor = ends[1]
        let readEnd = ends[0]
        let thread = Thread { [self] in
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count == 1 {
                    let number = Int32(byte)
                    for watch in self.watches.withLock({ $0[number] ?? [] }) { watch.fire(number) }
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
        thread.name = "conductor-signals"
        thread.start()
    }

    func watch(_ signals: [Int32], for received: SignalWatch.Received) {
        self.watches.withLock { watches in
            for number in signals { watches[number, default: []].append(received) }
        }
        for number in signals {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = relayHandler
            #else
            action.__sigaction_u.__sa_handler = relayHandler
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
    }
}
