import NIOSSL

/// The broker's `amqps` listener (RabbitMQ's `listeners.ssl`): a PEM certificate chain
/// and key, and optionally client certificates verified against a CA (RabbitMQ's
/// `ssl_options.verify = verify_peer` with `fail_if_no_peer_cert = true`).
public struct BrokerTLSConfiguration: Sendable, Hashable {
    /// Address of the TLS listener; nil: the plain listener's host.
    public var host: String?
    /// 0 picks a free port (see `BrokerServer.tlsPort`). RabbitMQ's usual one is 5671.
    public var port: Int
    public var certificateChainFile: String
    public var privateKeyFile: String
    /// CA certificates (PEM) client certificates must chain to.
    public var caFile: String?
    /// Require and verify a client certificate (needs `caFile`).
    public var verifyPeer: Bool

    public init(host: String? = nil, port: Int = 5671, certificateChainFile: String, privateKeyFile: String, caFile: String? = nil, verifyPeer: Bool = false) {
        self.host = host
        self.port = port
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.caFile = caFile
        self.verifyPeer = verifyPeer
    }

    /// Reads the files; a missing or malformed one is a `BrokerConfigurationError` naming it.
    public func makeContext() throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(self.certificateChainFile)
        } catch {
            throw BrokerConfigurationError("cannot read TLS certificate \(self.certificateChainFile): \(error)")
        }
        guard !chain.isEmpty else { throw BrokerConfigurationError("no certificate in \(self.certificateChainFile)") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: self.privateKeyFile, format: .pem)
        } catch {
            throw BrokerConfigurationError("cannot read TLS private key \(self.privateKeyFile): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = self.caFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw BrokerConfigurationError("cannot read TLS CA file \(caFile): \(error)")
            }
        }
        if self.verifyPeer {
            guard self.caFile != nil else { throw BrokerConfigurationError("verifying client certificates needs a CA file") }
            // Clients are not known by host name: the chain is what counts.
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw BrokerConfigurationError("invalid TLS configuration (does the key match the certificate?): \(error)")
        }
    }
}
