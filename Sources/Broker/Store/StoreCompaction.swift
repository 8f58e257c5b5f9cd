/// When the message log is compacted (pure: `BrokerStore` asks it as bytes change).
///
/// Only the oldest segment can be deleted (a segment's removal records may be what keeps
/// an older message from coming back), so one message left unacked pins every segment
/// after its own. Compaction copies the live messages of the oldest segment forward into
/// the current one (a `publish` record with the same id, for the queues it is still in,
/// which replaces the earlier copy on replay); the drained segment then goes like any
/// other. It runs while the garbage on disk (bytes of records no longer needed) exceeds
/// both the live bytes and two segments, so the log stays under about twice what is
/// alive plus a few segments, and a backlog that is all alive is never rewritten.
enum CompactionPolicy {
    /// How many record bytes one turn of the event loop copies at most, so a large
    /// compaction never holds up deliveries and publishes for long.
    static let sliceBytes = 4 << 20

    /// Whether to copy the oldest segment's live messages forward now.
    /// - `diskBytes`: everything written to the segments still on disk.
    /// - `liveBytes`: the records of messages some durable queue still holds.
    /// - `segmentsBehind`: segments on disk besides the one being written.
    static func shouldCompact(diskBytes: Int, liveBytes: Int, segmentSize: Int, segmentsBehind: Int) -> Bool {
        guard segmentsBehind > 0 else { return false }
        let garbage = diskBytes - liveBytes
        return garbage > liveBytes && garbage > 2 * segmentSize
    }
}
