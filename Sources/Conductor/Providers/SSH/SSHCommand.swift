#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ProcessSupport

/// One remote step on one host through OpenSSH's client (`ssh`), with the pool's options:
/// batch mode (never a prompt), the host key policy against the given known_hosts, the
/// identity, a connect timeout and keep-alives, and a deadline of our own on the whole
/// step. Its failures are sentences that name the host and the cause.
///
/// Why OpenSSH's client and not swift-nio-ssh: docs/architecture.md ("Reaching hosts").
struct SSHCommand: Sendable {
    /// The host and how to reach it.
    let placement: SSHPlacement
    /// The `ssh` executable (a name is looked up in PATH).
    var executable = "ssh"

    var host: SSHHost { self.placement.host }

    struct Output: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String

        /// `conductor-ssh: KEY VALUE…` lines the remote scripts print, by key.
        func reports(_ key: String) -> [String] {
            self.stdout.split(separator: "\n").compactMap { line in
                let prefix = "conductor-ssh: \(key)"
                guard line.hasPrefix(prefix) else { return nil }
                return String(line.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
            }
        }
    }

    /// The arguments before the remote command.
    var options: [String] {
        var arguments = [
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=\(self.placement.connectTimeout)", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "StrictHostKeyChecking=\(self.placement.hostKeys == .strict ? "yes" : "accept-new")", "-o", "LogLevel=ERROR",
            "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes",
            "-p", String(self.host.port), "-l", self.host.user,
        ]
        if let knownHosts = self.placement.knownHosts { arguments += ["-o", "UserKnownHostsFile=\(knownHosts)", "-o", "GlobalKnownHostsFile=/dev/null"] }
        if let identity = self.placement.identity { arguments += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        return arguments
    }

    /// Runs `script` with `sh` on the host (through `sudo -n` when the pool says so); the
    /// script comes on stdin, so nothing in it (a password) shows in a process list.
    func run(script: String, step: String, timeout: Int) async throws(ProviderError) -> Output {
        let file = NSTemporaryDirectory() + "conductor-ssh-\(UUID().uuidString).sh"
        guard Self.writePrivately(Array(script.utf8), to: file) else {
            throw self.failure(step, "cannot write a temporary file in \(NSTemporaryDirectory())")
        }
        defer { try? FileManager.default.removeItem(atPath: file) }
        let remote = self.placement.sudo
            ? "if command -v sudo >/dev/null 2>&1; then exec sudo -n sh -s; else echo 'conductor-ssh: no sudo' >&2; exit 97; fi"
            : "exec sh -s"
        return try await self.run(remote: remote, stdin: file, step: step, timeout: timeout)
    }

    /// Runs `remote` (one shell command line) with `stdin` (a local file) as its input.
    func run(remote: String, stdin: String?, step: String, timeout: Int) async throws(ProviderError) -> Output {
        if let identity = self.placement.identity, !FileManager.default.isReadableFile(atPath: identity) {
            throw self.failure(step, "the identity file \(identity) is not readable")
        }
        var request = ProcessRequest(
            .executable(self.executable, arguments: self.options + [self.host.address, remote]), timeout: .seconds(timeout),
            killGracePeriod: .seconds(2), outputLimit: 256 << 10)
        if let stdin { request.stdin = .reading(path: stdin) }
        let result: ProcessResult
        do {
            result = try await ProcessRunner.run(request)
        } catch {
            throw self.failure(step, "cannot run ssh (\(error)); install OpenSSH's client (Debian: openssh-client)")
        }
        if result.timedOut {
            throw self.failure(step, "no answer within \(timeout) s (the step was stopped)")
        }
        let output = Output(status: result.exitCode ?? -1, stdout: result.stdout.text, stderr: result.stderr.text)
        if output.status == 255 { throw self.connectionFailure(step, stderr: output.stderr) }
        if self.placement.sudo, output.status == 97, output.stderr.contains("conductor-ssh: no sudo") {
            throw self.failure(step, "sudo is not installed, and the pool says sudo: true (log in as root, or install sudo)")
        }
        if self.placement.sudo, output.stderr.contains("sudo: a password is required") || output.stderr.contains("sudo: a terminal is required") {
            throw self.failure(step, "sudo asks \(self.host.user) for a password; Conductor needs sudo without one (NOPASSWD) for this user")
        }
        return output
    }

    /// Created 0600 from the start (it may hold the bus password), never over an existing file.
    static func writePrivately(_ bytes: [UInt8], to path: String) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { return false }
            written += result
        }
        return true
    }

    func failure(_ step: String, _ cause: String) -> ProviderError {
        ProviderError(provider: "ssh", "\(self.host) (\(step)): \(cause)")
    }

    /// ssh exits 255 for its own errors; its last message says which.
    func connectionFailure(_ step: String, stderr: String) -> ProviderError {
        let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let last = lines.last(where: { !$0.hasPrefix("@") }) ?? "ssh failed without a message"
        let known = self.placement.knownHosts ?? "~/.ssh/known_hosts"
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return self.failure(
                step,
                "the host key has changed since it was recorded in \(known): someone may be intercepting the connection, or the host was reinstalled; if the change is expected, remove the old key (ssh-keygen -R \(self.host.address) -f \(known)) and connect again")
        }
        if stderr.contains("Host key verification failed") || stderr.contains("No ED25519 host key is known") || stderr.contains("host key for") {
            return self.failure(
                step,
                "the host's key is not in \(known) and host_keys is strict; add it (ssh-keyscan -p \(self.host.port) \(self.host.address) >> \(known), after checking it) or set host_keys: accept-new for a first contact")
        }
        if stderr.contains("Permission denied") {
            let key = self.placement.identity.map { "the key \($0)" } ?? "ssh's default keys"
            return self.failure(step, "the host refused \(key) for user \(self.host.user) (\(last))")
        }
        for (marker, meaning) in [
            ("Connection timed out", "cannot reach it: the connection timed out after \(self.placement.connectTimeout) s"),
            ("No route to host", "cannot reach it: no route to host"), ("Connection refused", "cannot reach it: connection refused on port \(self.host.port)"),
            ("Network is unreachable", "cannot reach it: network unreachable"),
            ("Could not resolve hostname", "cannot reach it: the name does not resolve"),
            ("Connection closed", "the connection was closed (\(last))"), ("Connection reset", "the connection was reset (\(last))"),
        ] where stderr.contains(marker) {
            return self.failure(step, meaning)
        }
        return self.failure(step, "ssh failed: \(last)")
    }
}

/// What reaches a host again, from the handle alone (`terminate` needs no deployable).
struct SSHPlacement: Hashable, Sendable, Codable {
    var host: SSHHost
    var identity: String?
    var knownHosts: String?
    var hostKeys: SSHPoolSettings.HostKeyPolicy
    var installDirectory: String
    var sudo: Bool
    var connectTimeout: Int
    var stepTimeout: Int

    init(host: SSHHost, pool: SSHPoolSettings) {
        self.host = host
        self.identity = pool.identity
        self.knownHosts = pool.knownHosts
        self.hostKeys = pool.hostKeys
        self.installDirectory = pool.installDirectory
        self.sudo = pool.sudo
        self.connectTimeout = pool.connectTimeout
        self.stepTimeout = pool.stepTimeout
    }

    var command: SSHCommand { SSHCommand(placement: self) }
}
