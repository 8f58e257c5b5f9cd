import AMQPClient
import AMQPProtocol
import Agent
import Foundation
import Glibc
import Mesh
import NIOCore
import Testing

/// A bus that goes away between the handshake and the agent's first consume (a launch
/// killed just then) must not end the agent: it connects again, as when the broker was not
/// reachable yet.
@Suite("Agent: a bus lost during set-up", .timeLimit(.minutes(1)))
struct AgentReconnectTests {
    @Test func aConnectionLostRightAfterTheHandshakeIsConnectedAgain() async throws {
        let bus = try await TestBus.start(.embedded)
        let target = try AMQPConnectionConfiguration(url: bus.agentURL)
        let proxy = try CuttingProxy(to: target.port)
        let directory = try TemporaryDirectory()
        defer {
            directory.remove()
            proxy.stop()
        }
        var configuration = try bus.agentConfiguration(instance: uniqueInstance("cut"), state: directory)
        configuration.broker.port = proxy.port
        let console = try await bus.console()
        let watch = try await console.watchHeartbeats()
        do {
            try await withAgent(configuration) { agent in
                let name = agent.name
                let heartbeat = try await watch.next(timeout: .seconds(15)) { $0.name == name }
                #expect(heartbeat != nil, "the agent did not come back after its first connection was cut")
            }
        } catch {
            try? await console.close()
            await bus.stop()
            throw error
        }
        #expect(proxy.connections >= 2)
        try? await console.close()
        await bus.stop()
    }
}

/// A TCP proxy on 127.0.0.1 to a broker that cuts its first connection right after
/// forwarding the broker's `connection.open-ok`; later connections pass untouched.
final class CuttingProxy: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var stopped = false

    var connections: Int { self.lock.withLock { self.accepted } }

    init(to brokerPort: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            close(listener)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { self.acceptLoop(brokerPort: brokerPort) }
    }

    func stop() {
        self.lock.withLock { self.stopped = true }
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop(brokerPort: Int) {
        while true {
            let client = accept(self.listener, nil, nil)
            guard client >= 0, !self.lock.withLock({ self.stopped }) else { return }
            let first = self.lock.withLock { () -> Bool in
                self.accepted += 1
                return self.accepted == 1
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: UInt16(brokerPort))
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            Thread.detachNewThread { Self.pump(from: client, to: server, cutAfterOpenOk: false) }
            Thread.detachNewThread { Self.pump(from: server, to: client, cutAfterOpenOk: first) }
        }
    }

    /// Copies bytes until either side closes; with `cutAfterOpenOk`, reads the broker's
    /// frames and closes both sockets once `connection.open-ok` was passed on.
    private static func pump(from source: Int32, to destination: Int32, cutAfterOpenOk: Bool) {
        var decoder = FrameDecoder()
        var pending = ByteBuffer()
        var bytes = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(source, &bytes, bytes.count)
            guard count > 0, write(destination, bytes, count) == count else { break }
            guard cutAfterOpenOk else { continue }
            pending.writeBytes(bytes[0..<count])
            var sawOpenOk = false
            while let frame = try? decoder.decode(buffer: &pending) {
                if case .method(_, .connectionOpenOk) = frame { sawOpenOk = true }
            }
            if sawOpenOk { break }
        }
        // Both directions end; each pump closes only the socket it reads, so none is closed twice.
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
        close(source)
    }
}
