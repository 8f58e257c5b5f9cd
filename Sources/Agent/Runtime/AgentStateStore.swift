import Foundation
import Mesh

/// The agent's small persistent state, one directory:
///
///     instance-id        the UUID used when no instance id is given
///     epoch              incremented on every start
///     jobs/<key>.json    results of finished jobs, so a job delivered twice runs once
///
/// Every write goes to a temporary file that is renamed into place, so a crash leaves
/// either the old or the new content.
public struct AgentStateStore: Sendable {
    public let directory: String

    public init(directory: String) throws(AgentError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory + "/jobs", withIntermediateDirectories: true)
        } catch {
            throw AgentError(.stateDirectory, "cannot create state directory \(directory): \(error.localizedDescription)")
        }
    }

    /// The instance id: `explicit` (a flag), else `CONDUCTOR_INSTANCE_ID` from `environment`,
    /// else the UUID stored here (created on first use).
    public func instanceID(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(AgentError) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment[AgentConfiguration.instanceEnvironmentVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        if let stored = self.read("instance-id")?.trimmingCharacters(in: .whitespacesAndNewlines), !stored.isEmpty {
            return stored
        }
        let created = UUID().uuidString.lowercased()
        try self.write("instance-id", Data((created + "\n").utf8))
        return created
    }

    /// Reads the stored epoch, adds one, stores it and returns it (1 on the first start).
    public func nextEpoch() throws(AgentError) -> Int64 {
        let previous = self.read("epoch").flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        let epoch = previous + 1
        try self.write("epoch", Data("\(epoch)\n".utf8))
        return epoch
    }

    /// The stored result of a finished job, or nil when this job id never finished here.
    public func finishedJob(_ jobID: String) -> JobResult? {
        guard let data = FileManager.default.contents(atPath: self.jobPath(jobID)),
            let value = try? MeshValue(json: data),
            let result = try? value.decode(as: JobResult.self),
            result.jobID == jobID
        else { return nil }
        return result
    }

    /// Records a finished job. After this returns, a redelivery of the job is not run again.
    public func recordFinishedJob(_ result: JobResult) throws(AgentError) {
        let value: MeshValue
        do {
            value = try MeshValue(encoding: result)
        } catch {
            throw AgentError(.stateDirectory, "cannot encode the result of job \(result.jobID): \(error)")
        }
        try self.write("jobs/" + Self.jobFileName(result.jobID), Data(value.jsonBytes))
    }

    func jobPath(_ jobID: String) -> String {
        self.directory + "/jobs/" + Self.jobFileName(jobID)
    }

    /// A job id that is a safe, short file name is used as is (easy to find by hand);
    /// anything else by a 128-bit hash. The file holds the id, so a collision is detected.
    static func jobFileName(_ jobID: String) -> String {
        let safe = jobID.utf8.count <= 200 && jobID.first != "." && jobID.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".": return true
            default: return false
            }
        }
        if safe { return jobID + ".json" }
        return "h-" + hex(fnv1a(jobID.utf8, basis: 0xcbf2_9ce4_8422_2325)) + hex(fnv1a(jobID.utf8.reversed(), basis: 0x8422_2325_cbf2_9ce4)) + ".json"
    }

    private static func fnv1a(_ bytes: some Sequence<UInt8>, basis: UInt64) -> UInt64 {
        var hash = basis
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    private func read(_ name: String) -> String? {
        FileManager.default.contents(atPath: self.directory + "/" + name).map { String(decoding: $0, as: UTF8.self) }
    }

    private func write(_ name: String, _ data: Data) throws(AgentError) {
        let path = self.directory + "/" + name
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw AgentError(.stateDirectory, "cannot write \(path): \(error.localizedDescription)")
        }
    }
}
