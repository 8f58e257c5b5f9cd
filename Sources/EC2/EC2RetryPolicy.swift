/// How failed calls are retried: exponential backoff with full jitter, bounded by a number
/// of attempts and by the time spent on the call in all.
public struct EC2RetryPolicy: Sendable, Equatable {
    /// Requests sent at most, the first included (1: never retry).
    public var maxAttempts: Int
    /// The cap of the first wait; each retry doubles it.
    public var baseDelay: Duration
    /// No single wait is longer.
    public var maxDelay: Duration
    /// No retry starts once this much time has passed since the first request, nor a
    /// wait that would end past it; each attempt's timeout is also cut to what is left.
    public var maxTotalTime: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(8), maxTotalTime: Duration = .seconds(60)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxTotalTime = maxTotalTime
    }

    /// One request, no retries.
    public static let none = EC2RetryPolicy(maxAttempts: 1)

    public enum Decision: Sendable, Equatable {
        case retry(after: Duration)
        case giveUp
    }

    /// What to do after `error` ended attempt number `attempt` (1-based), `elapsed` after
    /// the first request started. `jitter` in 0...1 picks the wait within the backoff
    /// window (full jitter: anywhere from zero to the window), so callers spread out.
    public func decision(after error: EC2Error, attempt: Int, elapsed: Duration, idempotent: Bool, jitter: Double) -> Decision {
        guard error.isRetryable(idempotent: idempotent), attempt < self.maxAttempts else { return .giveUp }
        let delay = self.backoff(attempt: attempt, jitter: jitter)
        guard elapsed + delay < self.maxTotalTime else { return .giveUp }
        return .retry(after: delay)
    }

    /// The wait after attempt number `attempt`: `jitter` × min(maxDelay, baseDelay × 2^(attempt-1)).
    public func backoff(attempt: Int, jitter: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let window = min(self.maxDelay, self.baseDelay * (1 << exponent))
        return window * min(max(jitter, 0), 1)
    }
}
