import AMQPClient

/// The next delivery of a consumer, or `AMQPError(.timeout)` after `seconds`.
///
/// Shared by the client and broker scenarios: a plain `iterator.next()` waits forever when
/// a delivery never comes, which turns a failing test into a hung test run.
public func next(_ iterator: inout AMQPConsumer.AsyncIterator, seconds: Double = 5) async throws -> AMQPMessage {
    let box = IteratorBox(iterator)
    let message = try await withThrowingTaskGroup(of: AMQPMessage?.self) { group in
        group.addTask { try await box.next() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
    iterator = box.iterator
    guard let message else { throw AMQPError(.timeout, "no delivery within \(seconds) s") }
    return message
}

/// Carries the iterator into the child task; only one task uses it at a time.
private final class IteratorBox: @unchecked Sendable {
    var iterator: AMQPConsumer.AsyncIterator
    init(_ iterator: AMQPConsumer.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> AMQPMessage? { try await self.iterator.next() }
}
