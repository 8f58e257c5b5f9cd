import Mesh
import Testing

/// Names a deployable's parameters may have and names the agent accepts as job parameters
/// and `run` variables: one rule for both.
let acceptedEnvironmentVariableNames = ["a", "Z", "db_host", "DB_HOST_2", "x_", "camelCase", String(repeating: "a", count: 63)]
let refusedEnvironmentVariableNames = ["", "1a", "_", "_private", "db-host", "db.host", "a b", "a=b", "é", "straße", String(repeating: "a", count: 64)]

@Suite("Environment variable names")
struct EnvironmentVariableNameTests {
    @Test(arguments: acceptedEnvironmentVariableNames)
    func accepted(_ name: String) throws {
        #expect(EnvironmentVariableName.isValid(name))
        try RunRequest(command: .shell("true"), env: [name: "v"]).validate()
        try ConfigurationJob(jobID: "j", services: [ServiceSpec(name: "s", script: "true", parameters: [name: "v"])]).validate()
    }

    @Test(arguments: refusedEnvironmentVariableNames)
    func refused(_ name: String) {
        #expect(!EnvironmentVariableName.isValid(name))
        #expect(throws: MeshError.self) { try RunRequest(command: .shell("true"), env: [name: "v"]).validate() }
        do {
            try ConfigurationJob(jobID: "j", services: [ServiceSpec(name: "s", script: "true", parameters: [name: "v"])]).validate()
            Issue.record("'\(name)' accepted")
        } catch {
            #expect(error.message == "service 's' parameter '\(name)' is not a valid environment variable name")
        }
    }
}
