import Foundation

/// An access key pair, with the session token of temporary credentials.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where they came from ("the environment", "/root/.aws/credentials [default]"), for
    /// logs and error messages.
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "given") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    /// Names the key and its source, never the secret.
    public var description: String {
        "AWS access key \(self.accessKeyID)\(self.sessionToken == nil ? "" : " with a session token") from \(self.source)"
    }
}

/// What the credential and region lookups read: the environment and the home directory.
/// Tests pass their own; everything else uses ``current``.
public struct AWSEnvironment: Sendable {
    public var variables: [String: String]
    public var homeDirectory: String

    public init(variables: [String: String], homeDirectory: String) {
        self.variables = variables
        self.homeDirectory = homeDirectory
    }

    public static var current: AWSEnvironment {
        let variables = ProcessInfo.processInfo.environment
        return AWSEnvironment(variables: variables, homeDirectory: variables["HOME"] ?? NSHomeDirectory())
    }

    /// A variable's value; an empty one counts as unset.
    public subscript(_ name: String) -> String? {
        self.variables[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
    public var credentialsFile: String {
        self["AWS_SHARED_CREDENTIALS_FILE"].map(self.expandingTilde) ?? "\(self.homeDirectory)/.aws/credentials"
    }

    /// AWS_CONFIG_FILE, else ~/.aws/config.
    public var configFile: String {
        self["AWS_CONFIG_FILE"].map(self.expandingTilde) ?? "\(self.homeDirectory)/.aws/config"
    }

    func expandingTilde(_ path: String) -> String {
        path.hasPrefix("~/") ? self.homeDirectory + path.dropFirst() : path
    }
}

/// Why no credentials or region could be found, with everything that was looked at.
public struct AWSConfigurationError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case noCredentials
        case partialCredentials
        case profileNotFound
        case noRegion
        case invalidEndpoint
        case unreadableFile
    }

    public let code: Code
    public let message: String
    /// One line per place consulted and what was found there.
    public let lookedAt: [String]

    public var description: String {
        self.lookedAt.isEmpty ? self.message : "\(self.message) (looked at: \(self.lookedAt.joined(separator: "; ")))"
    }
}

/// The usual AWS credential chain and region lookup, as the AWS CLI does them (the parts
/// that need no network: no instance metadata, SSO or assume-role).
public enum AWSConfigurationResolver {
    /// Credentials from, in order:
    /// 1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
    ///    (skipped when `profile` is given, as the CLI's `--profile` does);
    /// 2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials),
    ///    section `[PROFILE]`;
    /// 3. the config file (AWS_CONFIG_FILE or ~/.aws/config), section `[profile PROFILE]`
    ///    (`[default]` for the default profile).
    ///
    /// PROFILE is `profile`, else AWS_PROFILE, else `default`.
    public static func credentials(profile: String? = nil, environment: AWSEnvironment = .current) throws -> AWSCredentials {
        var lookedAt: [String] = []
        if profile == nil {
            let key = environment["AWS_ACCESS_KEY_ID"]
            let secret = environment["AWS_SECRET_ACCESS_KEY"]
            switch (key, secret) {
            case (let key?, let secret?):
                return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"], source: "the environment (AWS_ACCESS_KEY_ID)")
            case (.some, nil), (nil, .some):
                let (set, unset) = key != nil ? ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") : ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
                throw AWSConfigurationError(
                    code: .partialCredentials,
                    message: "\(set) is set but \(unset) is not: set both, or unset \(set) to use a profile",
                    lookedAt: ["the environment"]
                )
            case (nil, nil):
                lookedAt.append("the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)")
            }
        }
        let profileName = profile ?? environment["AWS_PROFILE"] ?? "default"

        let files = [
            (path: environment.credentialsFile, section: profileName),
            (path: environment.configFile, section: profileName == "default" ? "default" : "profile \(profileName)"),
        ]
        var sawProfile = false
        for file in files {
            let ini: INIFile
            switch try INIFile.load(file.path) {
            case .missing:
                lookedAt.append("\(file.path) (no such file)")
                continue
            case .loaded(let loaded):
                ini = loaded
            }
            guard let section = ini.sections[file.section] else {
                let present = ini.sections.keys.sorted().map { "[\($0)]" }.joined(separator: ", ")
                lookedAt.append("\(file.path) (no [\(file.section)]\(present.isEmpty ? "" : "; it has \(present)"))")
                continue
            }
            sawProfile = true
            let key = section["aws_access_key_id"].flatMap { $0.isEmpty ? nil : $0 }
            let secret = section["aws_secret_access_key"].flatMap { $0.isEmpty ? nil : $0 }
            switch (key, secret) {
            case (let key?, let secret?):
                let token = section["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
                return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token, source: "\(file.path) [\(file.section)]")
            case (.some, nil), (nil, .some):
                throw AWSConfigurationError(
                    code: .partialCredentials,
                    message: "\(file.path) [\(file.section)] has only one of aws_access_key_id and aws_secret_access_key",
                    lookedAt: lookedAt
                )
            case (nil, nil):
                lookedAt.append("\(file.path) [\(file.section)] (no aws_access_key_id)")
            }
        }
        if (profile != nil || environment["AWS_PROFILE"] != nil) && !sawProfile {
            throw AWSConfigurationError(
                code: .profileNotFound,
                message: "AWS profile '\(profileName)'\(profile == nil ? " (from AWS_PROFILE)" : "") is in neither \(environment.credentialsFile) nor \(environment.configFile)",
                lookedAt: lookedAt
            )
        }
        throw AWSConfigurationError(
            code: .noCredentials,
            message: "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put aws_access_key_id and aws_secret_access_key under [\(profileName)] in \(environment.credentialsFile)",
            lookedAt: lookedAt
        )
    }

    /// The region: `explicit`, else AWS_REGION, else AWS_DEFAULT_REGION, else `region` in
    /// the config file's profile (`profile`, else AWS_PROFILE, else `default`).
    public static func region(_ explicit: String? = nil, profile: String? = nil, environment: AWSEnvironment = .current) throws -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] { return region }
        var lookedAt = ["AWS_REGION and AWS_DEFAULT_REGION (not set)"]
        let profileName = profile ?? environment["AWS_PROFILE"] ?? "default"
        let section = profileName == "default" ? "default" : "profile \(profileName)"
        switch try INIFile.load(environment.configFile) {
        case .missing:
            lookedAt.append("\(environment.configFile) (no such file)")
        case .loaded(let ini):
            if let region = ini.sections[section]?["region"], !region.isEmpty { return region }
            lookedAt.append("\(environment.configFile) (no region under [\(section)])")
        }
        throw AWSConfigurationError(
            code: .noRegion,
            message: "no AWS region given: name one, set AWS_REGION, or put region = ... under [\(section)] in \(environment.configFile)",
            lookedAt: lookedAt
        )
    }
}

/// The AWS CLI's ini dialect: `[section]`, `key = value`, `#` and `;` comments. Indented
/// lines (nested settings such as `s3 =` blocks) are skipped.
struct INIFile {
    enum Loaded {
        case missing
        case loaded(INIFile)
    }

    var sections: [String: [String: String]] = [:]

    static func load(_ path: String) throws -> Loaded {
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AWSConfigurationError(code: .unreadableFile, message: "cannot read \(path)", lookedAt: [])
        }
        return .loaded(INIFile(parsing: String(decoding: data, as: UTF8.self)))
    }

    init(parsing text: String) {
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if let first = rawLine.first, first == " " || first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                // "[profile  prod]" and "[profile prod]" name the same profile.
                let words = name.split(whereSeparator: \.isWhitespace)
                let normalized = words.joined(separator: " ")
                current = normalized
                if self.sections[normalized] == nil { self.sections[normalized] = [:] }
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            self.sections[current]?[key] = value
        }
    }
}
