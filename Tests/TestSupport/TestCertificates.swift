import Foundation

/// A throwaway CA and certificates made by scripts/make-test-certs.sh (openssl CLI) in a
/// fresh temporary directory, once per test process. Nothing secret is committed.
///
/// Shared by BrokerTests (the TLS listener, client certificates) and ConductorCLITests
/// (`conductor broker --tls-port`): one script, one place that knows where it is.
public enum TestCertificates {
    public struct Files: Sendable {
        public let directory: String
        public func path(_ name: String) -> String { self.directory + "/" + name }
        public var ca: String { self.path("ca.pem") }
        public var serverCertificate: String { self.path("server.pem") }
        public var serverKey: String { self.path("server.key") }
        public var clientCertificate: String { self.path("client.pem") }
        public var clientKey: String { self.path("client.key") }
        public var otherCA: String { self.path("other-ca.pem") }
        public var misnamedCertificate: String { self.path("misnamed.pem") }
        public var misnamedKey: String { self.path("misnamed.key") }
        public var otherClientCertificate: String { self.path("other-client.pem") }
        public var otherClientKey: String { self.path("other-client.key") }
    }

    private static let made: Result<Files, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conductor-test-certs-\(ProcessInfo.processInfo.processIdentifier)").path
        try Self.script([directory])
        return Files(directory: directory)
    }

    private static func script(_ arguments: [String]) throws {
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/make-test-certs.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.runSerialized()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "make-test-certs.sh exited \(process.terminationStatus)"])
        }
    }

    /// A self-signed certificate for `addresses` (IP addresses or DNS names), made in
    /// `directory` as NAME.pem and NAME.key (`make-test-certs.sh --self-signed`): what an
    /// operator may give `--bus-tls-cert`. Returns the two paths.
    public static func selfSigned(_ name: String, addresses: [String], in directory: String) async throws -> (certificate: String, key: String) {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async { continuation.resume(with: Result { try Self.script(["--self-signed", directory, name] + addresses) }) }
        }
        return (directory + "/" + name + ".pem", directory + "/" + name + ".key")
    }

    /// Makes them on first use, on a Dispatch thread (never the cooperative pool).
    public static func files() async throws -> Files {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Self.made) }
        }
    }
}
