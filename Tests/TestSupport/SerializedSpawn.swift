import Foundation

extension Process {
    /// `run()`, one at a time in this test process. Foundation's `Process.run` crashed once
    /// in a memcpy (ConductorCLITests, with many tests spawning on many threads at once);
    /// spawns are quick, so taking turns costs nothing a test notices.
    public func runSerialized() throws {
        try spawnLock.withLock { try self.run() }
    }
}

private let spawnLock = NSLock()
