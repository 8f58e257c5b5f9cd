import Foundation
import Testing

@testable import EC2

/// Where the client sends its calls.
extension AWSConfigurationTests {
    @Test func endpointOverrides() throws {
        let home = try Home(credentials: Self.credentialsFile, config: "[default]\nregion = eu-west-1\n")
        defer { home.remove() }
        #expect(try EC2Configuration.resolve(environment: home.environment()).endpoint.absoluteString == "https://ec2.eu-west-1.amazonaws.com")
        #expect(try EC2Configuration.resolve(region: "cn-north-1", environment: home.environment()).endpoint.absoluteString == "https://ec2.cn-north-1.amazonaws.com.cn")
        let variable = home.environment(["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL": "http://127.0.0.1:6000"])
        #expect(try EC2Configuration.resolve(environment: variable).endpoint.absoluteString == "http://127.0.0.1:5000")
        #expect(try EC2Configuration.resolve(environment: home.environment(["AWS_ENDPOINT_URL": "http://127.0.0.1:6000"])).endpoint.absoluteString == "http://127.0.0.1:6000")
        let explicit = try EC2Configuration.resolve(endpoint: URL(string: "http://localhost:7000")!, environment: variable)
        #expect(explicit.endpoint.absoluteString == "http://localhost:7000")
        #expect(explicit.region == "eu-west-1")
        #expect(explicit.credentials.accessKeyID == "AKIDDEFAULT")
        let error = try #require(throws: AWSConfigurationError.self) {
            try EC2Configuration.resolve(environment: home.environment(["AWS_ENDPOINT_URL_EC2": "localhost:5000"]))
        }
        #expect(error.code == .invalidEndpoint)
    }
}
