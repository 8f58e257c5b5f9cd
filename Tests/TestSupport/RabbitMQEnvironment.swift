import Foundation

/// The test RabbitMQ, as scripts/test.sh (scripts/rabbitmq.sh) announces it in the
/// environment. Tests that need it are enabled only when it is set; an empty value counts
/// as not set.
///
/// Shared so that every target reads the same variables the same way.
public enum RabbitMQEnvironment {
    /// CONDUCTOR_RABBITMQ_URL: the plain AMQP listener (guest only).
    public static let url: String? = variable("CONDUCTOR_RABBITMQ_URL")
    /// CONDUCTOR_RABBITMQ_TLS_URL: the amqps:// listener.
    public static let tlsURL: String? = variable("CONDUCTOR_RABBITMQ_TLS_URL")
    /// CONDUCTOR_RABBITMQ_TLS_CA: the CA file that signed the TLS listener's certificate.
    public static let tlsCA: String? = variable("CONDUCTOR_RABBITMQ_TLS_CA")
    /// CONDUCTOR_RABBITMQ_MGMT_URL: its management API, http://guest:guest@127.0.0.1:15673
    /// (`scripts/rabbitmq.sh mgmt-url`), for tests that provision users and permissions.
    public static let managementURL: String? = variable("CONDUCTOR_RABBITMQ_MGMT_URL")

    /// CONDUCTOR_RABBITMQ_CLUSTER_URLS: the three nodes of the test cluster
    /// (scripts/rabbitmq-cluster.sh), their AMQP URLs separated by commas.
    public static let clusterURLs: [String]? = variable("CONDUCTOR_RABBITMQ_CLUSTER_URLS").map { $0.split(separator: ",").map(String.init) }
    /// CONDUCTOR_RABBITMQ_CLUSTER_MGMT_URLS: the nodes' management APIs, in the same order.
    public static let clusterManagementURLs: [String]? = variable("CONDUCTOR_RABBITMQ_CLUSTER_MGMT_URLS").map { $0.split(separator: ",").map(String.init) }

    /// Why a cluster test does not run here, or nil when it can (three AMQP and three
    /// management URLs). Printed by the tests that skip.
    public static var clusterUnavailable: String? {
        guard let urls = clusterURLs, urls.count == 3 else {
            return "CONDUCTOR_RABBITMQ_CLUSTER_URLS is not set to three URLs (scripts/test.sh sets it; by hand: export CONDUCTOR_RABBITMQ_CLUSTER_URLS=$(scripts/rabbitmq-cluster.sh start))"
        }
        guard let management = clusterManagementURLs, management.count == 3 else {
            return "CONDUCTOR_RABBITMQ_CLUSTER_MGMT_URLS is not set to three URLs (scripts/rabbitmq-cluster.sh mgmt-urls)"
        }
        return nil
    }

    private static func variable(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}
