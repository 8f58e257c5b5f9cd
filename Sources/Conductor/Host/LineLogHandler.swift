import Logging

/// Hands log records at `logLevel` and above to a line printer, as `warning: message
/// (key=value, ...)`: how `conductor serve` shows what its operator must see among its
/// progress lines (a lock request refused for not being the holder, a forced release).
struct LineLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    private let write: @Sendable (String) -> Void

    init(level: Logger.Level = .warning, write: @escaping @Sendable (String) -> Void) {
        self.logLevel = level
        self.write = write
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        let details = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        self.write("\(event.level): \(event.message)" + (details.isEmpty ? "" : " (\(details))"))
    }
}
