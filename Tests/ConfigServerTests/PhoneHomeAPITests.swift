import ConfigServer
import Conductor
import Foundation
import Mesh
import TestSupport
import Testing

/// The HTTP API over loopback with curl as the instances' client, against real launches
/// in this process (members that phone home need no agent).
@Suite(.timeLimit(.minutes(1)))
struct PhoneHomeAPITests {
    /// Two phone-home members: `appliance` needs `sensor`'s address and published version.
    static let sensors = """
        name: sensors
        providers:
          field:
            kind: phone-home
        instances:
          sensor:
            provider: field
            publishes: [version]
            services:
              probe:
                parameters:
                  interval: 5
          appliance:
            provider: field
            services:
              config:
                parameters:
                  sensor_host: ${sensor.ipaddress}
                  sensor_version: ${sensor.version}
                  motto: "it's fine"
                  ports: [1, 2]
                  secret: {secret: {length: 12}}
        """

    @Test func aLaunchThroughTheAPIAnswersEachRequestWithItsStatus() async throws {
        let file = try PhoneHomeHarness.deployable(Self.sensors)
        try await PhoneHomeHarness.with { harness in
            let launcher = try harness.launcher(for: file)
            let launch = Task { try await launcher.launch(LaunchRequest(file: file)) }
            let sensor = try await harness.envFile(deployment: "sensors", member: "sensor")
            let appliance = try await harness.envFile(deployment: "sensors", member: "appliance")
            #expect(sensor.url == harness.server.url)
            let mode = try FileManager.default.attributesOfItem(atPath: appliance.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)

            // 404: an instance that is not there, a path the API does not have; 405: another method.
            let unknown = try await HTTPExchange.curl("\(appliance.url)/configs/v1/\(UUID().uuidString.lowercased())", ["-H", appliance.bearer])
            #expect(unknown.status == 404)
            #expect(unknown.json?[path: "error"]?.stringValue?.hasPrefix("no instance") == true)
            #expect(try await HTTPExchange.curl("\(appliance.url)/configs/v1/not-an-id", ["-H", appliance.bearer]).status == 404)
            #expect(try await HTTPExchange.curl("\(appliance.url)/admin", ["-H", appliance.bearer]).status == 404)
            #expect(try await HTTPExchange.curl("\(appliance.url)/configs/v1", ["-H", appliance.bearer]).status == 404)
            let deleted = try await HTTPExchange.curl(appliance.configURL, ["-X", "DELETE", "-H", appliance.bearer])
            #expect(deleted.status == 405)
            #expect(deleted.headers["allow"] == "GET")

            // 401: no token, a wrong one, another instance's (which reads nothing of this one).
            let anonymous = try await HTTPExchange.curl(appliance.configURL)
            #expect(anonymous.status == 401)
            #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            #expect(try await HTTPExchange.curl(appliance.configURL, ["-H", "Authorization: Bearer " + String(repeating: "0", count: 64)]).status == 401)
            #expect(try await HTTPExchange.curl(appliance.configURL, ["-H", "Authorization: Basic " + appliance.token]).status == 401)
            let borrowed = try await HTTPExchange.curl(appliance.configURL, ["-H", sensor.bearer])
            #expect(borrowed.status == 401)
            #expect(!borrowed.text.contains("sensor_host"))
            #expect(try await HTTPExchange.curl(sensor.paramsURL, ["-X", "PUT", "-H", appliance.bearer], body: Data("{}".utf8)).status == 401)

            // 202 while its references are unresolved, naming them, as `_waiting_for` records them.
            let waiting = try await HTTPExchange.poll(appliance.configURL, ["-H", appliance.bearer]) {
                $0.json?[path: "waiting_for"]?.listValue?.isEmpty == false
            }
            #expect(waiting.status == 202)
            let waits = waiting.json?[path: "waiting_for"]?.listValue?.compactMap(\.stringValue) ?? []
            #expect(waits.contains("fact ipaddress of sensor"), "\(waiting.text)")
            #expect(waits.contains("fact custom.version of sensor"), "\(waiting.text)")
            #expect(waiting.json?[path: "member"]?.stringValue == "appliance")
            let applianceID = try #require(UUID(uuidString: appliance.instanceID))
            let recorded = try await harness.store.facts(instanceID: applianceID).first { $0.name == Launcher.waitingFact }
            #expect(recorded?.value.listValue?.compactMap(\.stringValue) == waits)
            let waitingText = try await HTTPExchange.curl(appliance.configURL, ["-H", appliance.bearer, "-H", "Accept: text/plain"])
            #expect(waitingText.status == 202)
            #expect(waitingText.text.contains("# waiting for fact ipaddress of sensor"))

            // 400 for a body that is not a JSON object of facts, 413 over 64 KiB: nothing recorded.
            let json = ["-X", "PUT", "-H", sensor.bearer, "-H", "Content-Type: application/json"]
            let malformed = try await HTTPExchange.curl(sensor.paramsURL, json, body: Data("{\"ipaddress\": ".utf8))
            #expect(malformed.status == 400)
            #expect(malformed.json?[path: "error"]?.stringValue?.contains("not valid JSON") == true, "\(malformed.text)")
            #expect(try await HTTPExchange.curl(sensor.paramsURL, json, body: Data("[1, 2]".utf8)).status == 400)
            #expect(try await HTTPExchange.curl(sensor.paramsURL, json, body: Data("{\"_waiting_for\": []}".utf8)).status == 400)
            #expect(try await HTTPExchange.curl(sensor.paramsURL, json, body: Data("{\"ipaddress\": 5}".utf8)).status == 400)
            let huge = Data(("{\"x\": \"" + String(repeating: "a", count: 70_000) + "\"}").utf8)
            #expect(try await HTTPExchange.curl(sensor.paramsURL, json, body: huge).status == 413)
            #expect(await harness.desk.reportedFacts(instanceID: sensor.instanceID) == nil)

            // The sensor reports its facts (as a form): they resolve the appliance's references.
            let form = ["-X", "PUT", "-H", sensor.bearer, "-H", "Content-Type: application/x-www-form-urlencoded"]
            let reported = try await HTTPExchange.curl(sensor.paramsURL, form, body: Data("ipaddress=10.9.8.7&custom.version=42".utf8))
            #expect(reported.status == 200, "\(reported.text)")
            #expect(reported.json?[path: "facts"] == .map(["ipaddress": .string("10.9.8.7"), "custom": .map(["version": .string("42")])]))

            // 200 with the configuration, JSON by default…
            let ready = try await HTTPExchange.poll(appliance.configURL, ["-H", appliance.bearer]) { $0.status != 202 }
            #expect(ready.status == 200, "\(ready.text)")
            #expect(ready.headers["cache-control"] == "no-store")
            let config = try #require(ready.json)
            #expect(config[path: "instance"]?.stringValue == appliance.instanceID)
            #expect(config[path: "member"]?.stringValue == "appliance")
            #expect(config[path: "deployment"]?.stringValue == "sensors@default")
            let parameters = try #require(config[path: "services"]?.mapValue?["config"])
            #expect(parameters[path: "sensor_host"] == .string("10.9.8.7"))
            #expect(parameters[path: "sensor_version"] == .string("42"))
            #expect(parameters[path: "motto"] == .string("it's fine"))
            #expect(parameters[path: "ports"] == .list([.int(1), .int(2)]))
            let secret = try #require(parameters[path: "secret"]?.stringValue)
            #expect(secret.count == 12)

            // …or lines a shell sources: quotes escaped, non-strings as JSON text.
            let shell = try await HTTPExchange.curl(appliance.configURL, ["-H", appliance.bearer, "-H", "Accept: text/x-shellscript"])
            #expect(shell.status == 200)
            #expect(shell.headers["content-type"]?.hasPrefix("text/x-shellscript") == true)
            #expect(shell.text.contains("motto='it'\\''s fine'\n"), "\(shell.text)")
            #expect(shell.text.contains("ports='[1,2]'\n"))
            #expect(shell.text.contains("sensor_host='10.9.8.7'\n"))
            let sourced = try await Self.source(shell.body, print: "$motto|$ports|$sensor_version|$secret")
            #expect(sourced == "it's fine|[1,2]|42|\(secret)")
            #expect(try await HTTPExchange.curl(appliance.configURL, ["-H", appliance.bearer, "-H", "Accept: text/plain"]).text == shell.text)

            // The sensor fetches its own; the launch ends configured, each member with the address it has.
            let sensorConfig = try await HTTPExchange.poll(sensor.configURL, ["-H", sensor.bearer]) { $0.status != 202 }
            #expect(sensorConfig.json?[path: "services"]?.mapValue?["probe"]?[path: "interval"] == .int(5))
            let result = try await launch.value
            #expect(result.configured, "\(result.members.map { "\($0.member): \($0.state) \($0.reason ?? "")" })")
            #expect(result.members.first { $0.member == "sensor" }?.address == "10.9.8.7")
            #expect(result.members.first { $0.member == "appliance" }?.address == "127.0.0.1")
            #expect(result.members.allSatisfy { $0.services.first?.output == "fetched by the instance over HTTP" })
            let trail = try await harness.store.auditTrail(deployment: "sensors", environment: "default", limit: 200)
            #expect(trail.filter { $0.action == "instance.fetch_config" }.count == 2)

            // A coordinator started afterwards (fwd, a restarted serve) accepts the same token:
            // only its hash is kept, in the recorded handle.
            let stored = try #require(try await harness.store.instance(applianceID)?.providerHandle)
            #expect(!stored.contains(appliance.token))
            #expect(stored.contains(PhoneHomeDesk.sha256(appliance.token)))
            let restarted = try await ConfigServer.start(ConfigServer.Settings(host: "127.0.0.1", port: 0), desk: PhoneHomeDesk(store: harness.store))
            let again = try await HTTPExchange.curl("\(restarted.url)/configs/v1/\(appliance.instanceID)", ["-H", appliance.bearer])
            #expect(again.status == 200)
            #expect(again.json?[path: "job"] == config[path: "job"])
            await restarted.stop()

            // Terminated: the tokens are revoked and the files that carried them removed.
            try await launcher.terminate(deployment: "sensors", environment: "default")
            let revoked = try await HTTPExchange.curl(appliance.configURL, ["-H", appliance.bearer])
            #expect(revoked.status == 401)
            #expect(revoked.json?[path: "error"]?.stringValue?.contains("revoked") == true)
            #expect(!FileManager.default.fileExists(atPath: appliance.path))
        }
    }

    @Test func aSourceThatReportsANewAddressReconfiguresItsConsumer() async throws {
        let file = try PhoneHomeHarness.deployable(Self.sensors)
        try await PhoneHomeHarness.with { harness in
            let launcher = try harness.launcher(for: file)
            let launch = Task { try await launcher.launch(LaunchRequest(file: file)) }
            let sensor = try await harness.envFile(deployment: "sensors", member: "sensor")
            let appliance = try await harness.envFile(deployment: "sensors", member: "appliance")
            let put = ["-X", "PUT", "-H", sensor.bearer, "-H", "Content-Type: application/json"]
            #expect(try await HTTPExchange.curl(sensor.paramsURL, put, body: Data("{\"ipaddress\": \"10.9.8.7\", \"custom\": {\"version\": \"1\"}}".utf8)).status == 200)
            for env in [sensor, appliance] {
                #expect(try await HTTPExchange.poll(env.configURL, ["-H", env.bearer]) { $0.status != 202 }.status == 200)
            }
            #expect(try await launch.value.configured)

            // Nothing changed: nothing to send.
            #expect(try await launcher.reconfigure(deployment: "sensors", environment: "default").isEmpty)
            // The sensor moves: the appliance gets a new job, which it fetches.
            #expect(try await HTTPExchange.curl(sensor.paramsURL, put, body: Data("{\"ipaddress\": \"10.9.8.8\"}".utf8)).status == 200)
            let pass = Task { try await launcher.reconfigure(deployment: "sensors", environment: "default") }
            let moved = try await HTTPExchange.poll(appliance.configURL, ["-H", appliance.bearer]) {
                $0.json?[path: "services"]?.mapValue?["config"]?[path: "sensor_host"] == .string("10.9.8.8")
            }
            #expect(moved.status == 200, "\(moved.text)")
            let done = try await pass.value
            #expect(done.map(\.member) == ["appliance"])
            #expect(done.first?.changed == ["config.sensor_host"])
            #expect(done.first?.succeeded == true)
            try await launcher.terminate(deployment: "sensors", environment: "default")
        }
    }

    @Test func theAgentDownloadStreamsTheBinaryWithItsChecksum() async throws {
        let directory = try PhoneHomeHarness.temporaryDirectory()
        let binary = directory + "/conductor"
        var bytes = Data(count: 3 * 1024 * 1024 + 17)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }
        try bytes.write(to: URL(fileURLWithPath: binary))
        let file = try PhoneHomeHarness.deployable(Self.sensors)
        try await PhoneHomeHarness.with(agentBinary: binary) { harness in
            let launcher = try harness.launcher(for: file)
            let launch = Task { try await launcher.launch(LaunchRequest(file: file)) }
            let sensor = try await harness.envFile(deployment: "sensors", member: "sensor")
            let agentURL = "\(sensor.url)/agent/v1/conductor"
            #expect(try await HTTPExchange.curl(agentURL).status == 401)
            #expect(try await HTTPExchange.curl(agentURL, ["-H", "Authorization: Bearer nope"]).status == 401)
            let download = try await HTTPExchange.curl(agentURL, ["-H", sensor.bearer])
            #expect(download.status == 200)
            #expect(download.body == bytes)
            let expected = try await sha256(ofFile: binary)
            #expect(download.headers["x-conductor-sha256"] == expected)
            let head = try await HTTPExchange.curl(agentURL, ["-I", "-H", sensor.bearer])
            #expect(head.headers["content-length"] == String(bytes.count))
            #expect(head.headers["x-conductor-sha256"] == expected)
            launch.cancel()
            _ = try? await launch.value
            try await launcher.terminate(deployment: "sensors", environment: "default")
            // Terminated: the token no longer downloads anything.
            #expect(try await HTTPExchange.curl(agentURL, ["-H", sensor.bearer]).status == 401)
        }
    }

    @Test func theAPIServesHTTPSWhenGivenACertificate() async throws {
        let certificates = try await TestCertificates.files()
        let file = try PhoneHomeHarness.deployable(Self.sensors)
        try await PhoneHomeHarness.with(tls: (certificates.serverCertificate, certificates.serverKey)) { harness in
            #expect(harness.server.url.hasPrefix("https://127.0.0.1:"))
            let launcher = try harness.launcher(for: file)
            let launch = Task { try await launcher.launch(LaunchRequest(file: file)) }
            let sensor = try await harness.envFile(deployment: "sensors", member: "sensor")
            #expect(sensor.url.hasPrefix("https://"))
            let trusted = try await HTTPExchange.curl(sensor.configURL, ["--cacert", certificates.ca, "-H", sensor.bearer])
            #expect(trusted.status == 202)
            // A client that does not trust the certificate gets nothing.
            #expect(try await HTTPExchange.curl(sensor.configURL, ["-H", sensor.bearer]).status == 0)
            launch.cancel()
            _ = try? await launch.value
            try await launcher.terminate(deployment: "sensors", environment: "default")
        }
    }

    @Test func withoutTheAPIAPhoneHomeDeployableStartsNothing() async throws {
        let file = try PhoneHomeHarness.deployable(Self.sensors)
        try await PhoneHomeHarness.with { harness in
            let launcher = try harness.launcher(for: file)
            let bare = Launcher(
                store: harness.store, providers: [LocalProvider(executable: ConductorBinary.path)], options: launcher.options)
            do {
                _ = try await bare.launch(LaunchRequest(file: file))
                Issue.record("launched without the HTTP API")
            } catch let error as LaunchError {
                #expect(error.code == .unknownProvider)
                #expect(error.message.contains("--http"), "\(error.message)")
            }
            #expect(try await harness.store.deployment("sensors", environment: "default") == nil)
        }
    }

    @Test func aPhoneHomeServiceHasParametersButNoScript() throws {
        let file = try PhoneHomeHarness.deployable("""
            name: scripted
            providers:
              field: {kind: phone-home, url: "ftp://x"}
            instances:
              box:
                provider: field
                services:
                  config:
                    script: echo hi
            """)
        let report = DeployableLoader.load(file: file)
        #expect(!report.isValid)
        let messages = report.errors.map(\.message)
        #expect(messages.contains { $0.contains("phones home") && $0.contains("remove the script") }, "\(messages)")
        #expect(messages.contains { $0.contains("url must be") }, "\(messages)")
    }

    /// Sources `body` in sh and prints `expression`.
    static func source(_ body: Data, print expression: String) async throws -> String {
        let path = try PhoneHomeHarness.temporaryDirectory() + "/config.sh"
        try body.write(to: URL(fileURLWithPath: path))
        return try await offloaded {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", ". \"$1\"; printf '%s' \"\(expression)\"", "sh", path]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }
    }
}
