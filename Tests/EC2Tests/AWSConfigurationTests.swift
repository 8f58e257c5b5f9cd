import Foundation
import Testing

@testable import EC2

/// The credential chain, the region and the endpoint, against a temporary home directory
/// and a made-up environment.
@Suite("AWS credentials, region and endpoint")
struct AWSConfigurationTests {
    /// A fresh home directory with `.aws/credentials` and `.aws/config` as given (nil: no file).
    struct Home {
        let path: String

        init(credentials: String? = nil, config: String? = nil) throws {
            self.path = NSTemporaryDirectory() + "ec2-tests-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: self.path + "/.aws", withIntermediateDirectories: true)
            if let credentials { try credentials.write(toFile: self.path + "/.aws/credentials", atomically: true, encoding: .utf8) }
            if let config { try config.write(toFile: self.path + "/.aws/config", atomically: true, encoding: .utf8) }
        }

        func environment(_ variables: [String: String] = [:]) -> AWSEnvironment {
            AWSEnvironment(variables: variables, homeDirectory: self.path)
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: self.path)
        }
    }

    static let credentialsFile = """
        # keys for tests
        [default]
        aws_access_key_id = AKIDDEFAULT
        aws_secret_access_key = secret/default+key

        [prod]
        aws_access_key_id=AKIDPROD
        aws_secret_access_key=secretprod
        aws_session_token = tokenprod
        ; a comment
        [half]
        aws_access_key_id = AKIDHALF
        """

    @Test func environmentComesFirst() throws {
        let home = try Home(credentials: Self.credentialsFile)
        defer { home.remove() }
        let credentials = try AWSConfigurationResolver.credentials(environment: home.environment([
            "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secretenv", "AWS_SESSION_TOKEN": "tokenenv", "AWS_PROFILE": "prod",
        ]))
        #expect(credentials == AWSCredentials(accessKeyID: "AKIDENV", secretAccessKey: "secretenv", sessionToken: "tokenenv", source: "the environment (AWS_ACCESS_KEY_ID)"))
        #expect(!credentials.description.contains("secretenv"))
    }

    @Test func halfAnEnvironmentIsAnError() throws {
        let home = try Home(credentials: Self.credentialsFile)
        defer { home.remove() }
        let error = try #require(throws: AWSConfigurationError.self) {
            try AWSConfigurationResolver.credentials(environment: home.environment(["AWS_ACCESS_KEY_ID": "AKIDENV"]))
        }
        #expect(error.code == .partialCredentials)
        #expect(error.description.contains("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"))
    }

    @Test func defaultProfileOfTheCredentialsFile() throws {
        let home = try Home(credentials: Self.credentialsFile)
        defer { home.remove() }
        let credentials = try AWSConfigurationResolver.credentials(environment: home.environment())
        #expect(credentials.accessKeyID == "AKIDDEFAULT")
        #expect(credentials.secretAccessKey == "secret/default+key")
        #expect(credentials.sessionToken == nil)
        #expect(credentials.source == "\(home.path)/.aws/credentials [default]")
    }

    @Test func profileFromAWSProfileOrExplicit() throws {
        let home = try Home(credentials: Self.credentialsFile)
        defer { home.remove() }
        let fromVariable = try AWSConfigurationResolver.credentials(environment: home.environment(["AWS_PROFILE": "prod"]))
        #expect(fromVariable.accessKeyID == "AKIDPROD")
        #expect(fromVariable.sessionToken == "tokenprod")
        // An explicit profile wins over the environment's keys, as `aws --profile` does.
        let explicit = try AWSConfigurationResolver.credentials(
            profile: "prod", environment: home.environment(["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secretenv"]))
        #expect(explicit.accessKeyID == "AKIDPROD")
    }

    @Test func sharedCredentialsFileVariable() throws {
        let home = try Home()
        defer { home.remove() }
        let elsewhere = home.path + "/elsewhere.ini"
        try "[default]\naws_access_key_id = AKIDELSEWHERE\naws_secret_access_key = s\n".write(toFile: elsewhere, atomically: true, encoding: .utf8)
        let credentials = try AWSConfigurationResolver.credentials(environment: home.environment(["AWS_SHARED_CREDENTIALS_FILE": elsewhere]))
        #expect(credentials.accessKeyID == "AKIDELSEWHERE")
        #expect(credentials.source == "\(elsewhere) [default]")
    }

    @Test func keysInTheConfigFile() throws {
        let home = try Home(config: "[profile ci]\nregion = eu-west-3\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = secretconfig\n")
        defer { home.remove() }
        let credentials = try AWSConfigurationResolver.credentials(profile: "ci", environment: home.environment())
        #expect(credentials.accessKeyID == "AKIDCONFIG")
        #expect(credentials.source == "\(home.path)/.aws/config [profile ci]")
    }

    @Test func nothingFoundNamesWhereItLooked() throws {
        let home = try Home(config: "[default]\nregion = us-east-1\n")
        defer { home.remove() }
        let error = try #require(throws: AWSConfigurationError.self) {
            try AWSConfigurationResolver.credentials(environment: home.environment())
        }
        #expect(error.code == .noCredentials)
        #expect(error.lookedAt == [
            "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)",
            "\(home.path)/.aws/credentials (no such file)",
            "\(home.path)/.aws/config [default] (no aws_access_key_id)",
        ])
        #expect(error.description.hasPrefix("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))
    }

    @Test func unknownProfileListsTheOnesThere() throws {
        let home = try Home(credentials: Self.credentialsFile)
        defer { home.remove() }
        let error = try #require(throws: AWSConfigurationError.self) {
            try AWSConfigurationResolver.credentials(profile: "staging", environment: home.environment())
        }
        #expect(error.code == .profileNotFound)
        #expect(error.description.contains("AWS profile 'staging' is in neither"))
        #expect(error.description.contains("no [staging]; it has [default], [half], [prod]"))
    }

    @Test func halfAProfileIsAnError() throws {
        let home = try Home(credentials: Self.credentialsFile)
        defer { home.remove() }
        let error = try #require(throws: AWSConfigurationError.self) {
            try AWSConfigurationResolver.credentials(profile: "half", environment: home.environment())
        }
        #expect(error.code == .partialCredentials)
    }

    @Test func regionChain() throws {
        let home = try Home(config: "[default]\nregion = eu-central-1\n[profile prod]\nregion=ap-southeast-2\n  s3 =\n    region = nowhere\n")
        defer { home.remove() }
        #expect(try AWSConfigurationResolver.region("us-west-2", environment: home.environment(["AWS_REGION": "eu-west-1"])) == "us-west-2")
        #expect(try AWSConfigurationResolver.region(environment: home.environment(["AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"])) == "eu-west-1")
        #expect(try AWSConfigurationResolver.region(environment: home.environment(["AWS_DEFAULT_REGION": "eu-west-2"])) == "eu-west-2")
        #expect(try AWSConfigurationResolver.region(environment: home.environment()) == "eu-central-1")
        #expect(try AWSConfigurationResolver.region(environment: home.environment(["AWS_PROFILE": "prod"])) == "ap-southeast-2")
        #expect(try AWSConfigurationResolver.region(profile: "prod", environment: home.environment()) == "ap-southeast-2")
    }

    @Test func noRegionSaysWhatToSet() throws {
        let home = try Home()
        defer { home.remove() }
        let error = try #require(throws: AWSConfigurationError.self) {
            try AWSConfigurationResolver.region(environment: home.environment())
        }
        #expect(error.code == .noRegion)
        #expect(error.description.contains("set AWS_REGION"))
        #expect(error.description.contains("\(home.path)/.aws/config (no such file)"))
    }
}
