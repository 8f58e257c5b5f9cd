// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "conductor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "conductor", targets: ["ConductorCLI"]),
        .library(name: "AMQPProtocol", targets: ["AMQPProtocol"]),
        .library(name: "AMQPClient", targets: ["AMQPClient"]),
        .library(name: "Broker", targets: ["Broker"]),
        .library(name: "Mesh", targets: ["Mesh"]),
        .library(name: "MeshClient", targets: ["MeshClient"]),
        .library(name: "ProcessSupport", targets: ["ProcessSupport"]),
        .library(name: "Agent", targets: ["Agent"]),
        .library(name: "PerfTest", targets: ["PerfTest"]),
        .library(name: "Conductor", targets: ["Conductor"]),
        .library(name: "EC2", targets: ["EC2"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The PostgreSQL state store (`--state postgresql://...`).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // TLS for the broker's amqps listener and the client's amqps:// URLs.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        // The broker's /metrics endpoint.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        // The EC2 provider's HTTPS client (the EC2 target).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // The coordinator's HTTP API for instances that phone home (ConfigServer); no
        // swift-configuration support needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Hummingbird's header types, named by ConfigServer.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // Wire format only: frames, generated methods, field tables. No I/O, no Foundation.
        .target(
            name: "AMQPProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Client role: connection/channel state, NIO handler, async API.
        .target(
            name: "AMQPClient",
            dependencies: [
                "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Server role: connections, routing, queues, users/vhosts/permissions.
        .target(
            name: "Broker",
            dependencies: [
                "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The bus protocol shared by agent and conductor: QMFv2-style envelopes, subjects,
        // values, query predicates.
        .target(
            name: "Mesh",
            dependencies: [
                "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Spawning and supervising child processes: one posix_spawn helper (process groups,
        // sessions, descriptors), group kills, wait-status decoding, bounded capture.
        .target(name: "ProcessSupport"),
        // The console side of the bus, used by agent, conductor and CLI alike: requests and
        // replies, heartbeat watching, remote run, the coordinator client, request signing.
        .target(
            name: "MeshClient",
            dependencies: [
                "Mesh", "AMQPClient", "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // Ed25519 request signatures.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The node agent: fact collectors, object model, job runner.
        .target(
            name: "Agent",
            dependencies: [
                "Mesh", "MeshClient", "ProcessSupport", "AMQPClient", "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                // Ed25519 request signatures.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The coordinator: deployable model and validation, resolver, providers, state store.
        .target(
            name: "Conductor",
            dependencies: [
                "Mesh", "MeshClient", "ProcessSupport", "AMQPClient", "AMQPProtocol", "Broker", "EC2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                // Reading the launch bus's certificate (is it self-signed?).
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // An EC2 Query API client with its own SigV4 signer and AWS credential chain, for the
        // `provider: ec2` of Conductor. Knows nothing of Conductor.
        .target(
            name: "EC2",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The coordinator's HTTP API (Hummingbird): configurations and facts of instances that
        // phone home, and the agent binary for instances that download it. Its own target so
        // that Conductor does not depend on an HTTP server; the CLI starts it.
        .target(
            name: "ConfigServer",
            dependencies: [
                "Conductor", "Mesh",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // `conductor perf-test`: a load generator for any AMQP 0-9-1 broker.
        .target(
            name: "PerfTest",
            dependencies: [
                "AMQPClient", "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The hidden benchmarks (`bench-agents`, `lock bench`): agents or a coordinator in
        // this process, timed through the client API.
        .target(
            name: "ConductorBench",
            dependencies: [
                "Agent", "Conductor", "Broker", "Mesh", "MeshClient", "AMQPClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "ConductorCLI",
            dependencies: [
                "AMQPProtocol", "AMQPClient", "Broker", "Mesh", "MeshClient", "ProcessSupport", "Agent", "Conductor", "ConductorBench", "PerfTest",
                "ConfigServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // What the test targets share (not a test target, not in any product): the embedded
        // test broker, `next` with a timeout, the `conductor` binary next to the test runner,
        // the test RabbitMQ's environment, the test certificates. See docs/testing.md.
        .target(
            name: "TestSupport",
            dependencies: [
                "Broker", "AMQPClient", "AMQPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "AMQPProtocolTests",
            dependencies: ["AMQPProtocol", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOTestUtils", package: "swift-nio")]
        ),
        .testTarget(
            name: "AMQPClientTests",
            dependencies: ["AMQPClient", "Broker", "AMQPProtocol", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .testTarget(
            name: "BrokerTests",
            dependencies: ["Broker", "AMQPClient", "AMQPProtocol", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        .testTarget(name: "ProcessSupportTests", dependencies: ["ProcessSupport"]),
        .testTarget(
            name: "MeshTests",
            dependencies: ["Mesh", "AMQPProtocol"]
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: ["Agent", "Mesh", "MeshClient", "ProcessSupport", "AMQPClient", "AMQPProtocol", "Broker", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .testTarget(
            name: "ConductorTests",
            dependencies: [
                "Conductor", "Mesh", "MeshClient", "ProcessSupport", "Agent", "AMQPClient", "Broker", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "EC2Tests",
            dependencies: [
                "EC2", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            resources: [.copy("Vectors")]
        ),
        // The HTTP API over loopback (curl as the client), phone-home launches in process and
        // through the binary.
        .testTarget(
            name: "ConfigServerTests",
            dependencies: [
                "ConfigServer", "Conductor", "Mesh", "TestSupport", "ProcessSupport", "AMQPClient", "Broker",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Runs the built `conductor` binary: --help pinned, errors, perf-test end to end.
        .testTarget(name: "ConductorCLITests", dependencies: ["TestSupport", "ProcessSupport", "EC2"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets for the frame decoder and the bus's JSON reader, only when asked for:
// they must be built with `-sanitize=fuzzer`, which a normal build cannot link. See
// scripts/fuzz.sh.
if Context.environment["CONDUCTOR_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "FrameDecoderFuzzer",
            dependencies: ["AMQPProtocol", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/FrameDecoderFuzzer"
        )
    )
    package.products.append(.executable(name: "FrameDecoderFuzzer", targets: ["FrameDecoderFuzzer"]))
    package.targets.append(.executableTarget(name: "MeshJSONFuzzer", dependencies: ["Mesh"], path: "Fuzz/MeshJSONFuzzer"))
    package.products.append(.executable(name: "MeshJSONFuzzer", targets: ["MeshJSONFuzzer"]))
}
