import NIOCore
import NIOSSL

extension BrokerConnection {
    /// The login a TLS client certificate gives for SASL EXTERNAL: the subject's common
    /// name (RabbitMQ's rabbitmq_auth_mechanism_ssl with `ssl_cert_login_from =
    /// common_name`). Only a certificate the broker verified counts, i.e. on a listener with
    /// `verifyPeer` (without it no client certificate is asked for).
    static func certificateLogin(_ context: ChannelHandlerContext, verifyPeer: Bool) -> String? {
        guard verifyPeer, let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() else { return nil }
        guard let name = certificate.subjectName.first(where: { $0.type == .commonName })?.value, !name.isEmpty else { return nil }
        return name
    }
}
