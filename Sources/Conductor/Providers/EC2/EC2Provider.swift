import EC2
import Foundation

/// `kind: ec2`: each member is an EC2 instance started with RunInstances; its user data
/// (a shell script cloud-init runs, `EC2UserData`) downloads the agent from a URL,
/// checks its SHA-256, writes the agent's configuration and starts it, as the SSH
/// provider does over SSH.
///
/// Never two instances for one member: RunInstances carries the member's instance id as
/// its ClientToken (EC2 answers a repeated call with the first call's instance) and the
/// instances are tagged `conductor:instance`, `conductor:deployment` and `conductor:member`,
/// so `locate` (a roll-forward after a crash) finds them by tag. The handle keeps region,
/// endpoint and the EC2 instance id, so `terminate` works without the deployable.
/// docs/launch.md.
public struct EC2Provider: InstanceProvider {
    public let name: String
    /// Nil: reaches instances through their handles only.
    let settings: EC2Settings?
    /// The coordinator's HTTP API (`--http`): without `agent_url`, instances download the
    /// agent from it, with a token of their own.
    let coordinator: PhoneHomeDesk?
    let heartbeatInterval: Double

    public static let kind = "ec2"

    public init(name: String, settings: EC2Settings, coordinator: PhoneHomeDesk? = nil, heartbeatInterval: Double = 1) {
        self.name = name
        self.settings = settings
        self.coordinator = coordinator
        self.heartbeatInterval = heartbeatInterval
    }

    public init(handlesOnlyNamed name: String = "ec2") {
        self.name = name
        self.settings = nil
        self.coordinator = nil
        self.heartbeatInterval = 1
    }

    /// What reaches an instance again.
    struct Placement: Codable, Hashable, Sendable {
        var region: String
        var endpoint: String
        var profile: String?
        var instance: String
    }

    public func start(_ request: InstanceStartRequest) async throws -> InstanceHandle {
        guard let settings else { throw ProviderError(provider: self.name, "no EC2 settings to start \(request.member) with") }
        let client = try self.client(region: settings.region, endpoint: settings.endpoint, profile: settings.profile)
        // Started already (a roll-forward after a crash between RunInstances and the record)?
        if let found = try await self.find(instanceID: request.instanceID, client: client) {
            return try await self.waitRunning(found.id, request: request, client: client, settings: settings, tokenSHA256: nil)
        }
        let (userData, tokenSHA256) = try self.userData(for: request, settings: settings)
        var tags = settings.tags
        tags["conductor:instance"] = request.instanceID
        tags["conductor:deployment"] = "\(request.deployment)@\(request.environment)"
        tags["conductor:member"] = request.member
        if tags["Name"] == nil { tags["Name"] = "\(request.deployment)-\(request.member)" }
        let reservation: EC2Reservation
        do {
            reservation = try await client.runInstances(EC2RunInstancesRequest(
                imageID: settings.image, instanceType: settings.instanceType, keyName: settings.keyName,
                securityGroupIDs: settings.securityGroups, subnetID: settings.subnet, userData: userData, tags: tags,
                clientToken: request.instanceID))
        } catch {
            throw ProviderError(provider: self.name, "RunInstances for \(request.member) failed: \(error)")
        }
        guard let instance = reservation.instances.first else {
            throw ProviderError(provider: self.name, "RunInstances for \(request.member) answered no instance")
        }
        return try await self.waitRunning(instance.id, request: request, client: client, settings: settings, tokenSHA256: tokenSHA256)
    }

    /// Polls until the instance runs and has its private address (within `running_timeout`).
    private func waitRunning(
        _ id: String, request: InstanceStartRequest, client: EC2Client, settings: EC2Settings, tokenSHA256: String?
    ) async throws -> InstanceHandle {
        let deadline = ContinuousClock.now + .seconds(settings.runningTimeout)
        var last: EC2Instance?
        while ContinuousClock.now < deadline {
            let described = try? await client.describeInstances(ids: [id]).first
            if let described { last = described }
            switch described?.state {
            case .running?:
                if let address = described?.privateIP {
                    var handle = self.handle(request.instanceID, ec2: id, address: address, client: client, settings: settings)
                    handle.tokenSHA256 = tokenSHA256
                    return handle
                }
            case .terminated?, .shuttingDown?:
                throw ProviderError(provider: self.name, "instance \(id) of \(request.member) is \(described!.state.name) before it ran (see its console output)")
            default:
                break
            }
            try await Task.sleep(for: .seconds(2))
        }
        throw ProviderError(
            provider: self.name,
            "instance \(id) of \(request.member) was not running with a private address within \(settings.runningTimeout) s (last state: \(last?.state.name ?? "unknown"))")
    }

    private func handle(_ instanceID: String, ec2: String, address: String?, client: EC2Client, settings: EC2Settings?) -> InstanceHandle {
        let placement = Placement(
            region: client.configuration.region, endpoint: client.configuration.endpoint.absoluteString, profile: settings?.profile, instance: ec2)
        let value = String(decoding: (try? JSONEncoder().encode(placement)) ?? Data(), as: UTF8.self)
        return InstanceHandle(instanceID: instanceID, value: value, address: address, kind: Self.kind)
    }

    public func stop(_ handle: InstanceHandle) async throws {
        guard let placement = Self.placement(handle) else {
            throw ProviderError(provider: self.name, "the handle of instance \(handle.instanceID) names no EC2 instance")
        }
        let client = try self.client(region: placement.region, endpoint: placement.endpoint, profile: placement.profile)
        do {
            _ = try await client.terminateInstances(ids: [placement.instance])
        } catch let error as EC2Error where error.kind == .notFound {
            return
        } catch {
            throw ProviderError(provider: self.name, "TerminateInstances \(placement.instance) failed: \(error)")
        }
    }

    public func isAlive(_ handle: InstanceHandle) async -> Bool {
        guard let placement = Self.placement(handle),
            let client = try? self.client(region: placement.region, endpoint: placement.endpoint, profile: placement.profile),
            let instance = try? await client.describeInstances(ids: [placement.instance]).first
        else { return false }
        return [.pending, .running].contains(instance.state)
    }

    public func locate(instanceID: String) async -> InstanceHandle? {
        guard let settings, let client = try? self.client(region: settings.region, endpoint: settings.endpoint, profile: settings.profile),
            let found = try? await self.find(instanceID: instanceID, client: client)
        else { return nil }
        return self.handle(instanceID, ec2: found.id, address: found.privateIP, client: client, settings: settings)
    }

    /// The live instance tagged with this instance id.
    private func find(instanceID: String, client: EC2Client) async throws -> EC2Instance? {
        do {
            return try await client.describeInstances(filters: [
                .tag("conductor:instance", instanceID), .instanceState(.pending, .running, .stopping, .stopped),
            ]).first
        } catch {
            throw ProviderError(provider: self.name, "DescribeInstances failed: \(error)")
        }
    }

    static func placement(_ handle: InstanceHandle) -> Placement? {
        try? JSONDecoder().decode(Placement.self, from: Data(handle.value.utf8))
    }

    private func client(region: String?, endpoint: String?, profile: String?) throws(ProviderError) -> EC2Client {
        do {
            let configuration = try EC2Configuration.resolve(region: region, endpoint: endpoint.flatMap(URL.init(string:)), profile: profile)
            return EC2Client(configuration: configuration)
        } catch {
            throw ProviderError(provider: self.name, "\(error)")
        }
    }

    // MARK: - User data

    /// The script, and the SHA-256 of the download token it carries (nil with `agent_url`).
    func userData(for request: InstanceStartRequest, settings: EC2Settings) throws(ProviderError) -> (String, String?) {
        guard request.busReach.beyondLoopback else {
            throw ProviderError(
                provider: self.name,
                "EC2 instances cannot reach the bus: the embedded bus listens on loopback only. Launch with --bus-listen 0.0.0.0 and --bus-tls-cert/--bus-tls-key (and set bus_address), or give --broker with an address they reach")
        }
        var brokerURL = request.brokerURL
        var busCACertificate: String?
        if let host = InstanceURL.host(of: brokerURL), InstanceURL.isLocalOnly(host) {
            guard let address = settings.busAddress else {
                throw ProviderError(provider: self.name, "set bus_address: the address EC2 instances reach this machine's bus at (the bus URL names \(host))")
            }
            let home = SSHScripts.home(installDirectory: settings.installDirectory, instanceID: request.instanceID)
            (brokerURL, busCACertificate) = try InstanceURL.remoteBus(
                brokerURL, reach: request.busReach, address: address, home: home, provider: self.name)
        }
        var agentURL: String
        var token: (token: String, sha256: String)?
        if let given = settings.agentURL {
            agentURL = given
        } else if let coordinator, let base = coordinator.baseURL {
            // The coordinator's own endpoint, as the instances reach it: at bus_address
            // (this machine as they see it) when set.
            agentURL = base + "/agent/v1/conductor"
            if let address = settings.busAddress {
                agentURL = InstanceURL.replacingHost(of: agentURL, with: address)
            } else if let host = InstanceURL.host(of: agentURL), InstanceURL.isLocalOnly(host) {
                throw ProviderError(provider: self.name, "set bus_address: the address EC2 instances reach this machine at (the HTTP API listens on \(host))")
            }
            token = coordinator.issueToken(instanceID: request.instanceID)
        } else {
            throw ProviderError(
                provider: self.name,
                "set agent_url (where the instances download the conductor binary), or launch with --http so they download it from the coordinator")
        }
        let sha256: String
        if let given = settings.agentSHA256 {
            sha256 = given
        } else {
            sha256 = try SSHProvider.checksum(of: SSHProvider.runningBinary(), provider: self.name).sha256
        }
        let text = EC2UserData.script(
            request: request, brokerURL: brokerURL, busCACertificate: busCACertificate, agentURL: agentURL, token: token?.token, sha256: sha256,
            installDirectory: settings.installDirectory, heartbeatInterval: self.heartbeatInterval)
        guard text.utf8.count <= EC2UserData.limit else {
            throw ProviderError(provider: self.name, "the user data of \(request.member) is \(text.utf8.count) bytes, over EC2's \(EC2UserData.limit)")
        }
        if let bad = [brokerURL, agentURL, request.member].first(where: { $0.contains("'") || $0.contains("\n") }) {
            throw ProviderError(provider: self.name, "'\(bad)' contains a quote or a line break, which the user data cannot carry")
        }
        return (text, token?.sha256)
    }
}

/// The user data of an EC2 member: a shell script (cloud-init runs a `#!` script once, as
/// root, at first boot) that installs and starts the agent. It carries no binary (EC2
/// allows 16 KB): it downloads it, and refuses one whose SHA-256 differs; an image that
/// already has that binary skips the download.
enum EC2UserData {
    static let limit = 16_384

    static func script(
        request: InstanceStartRequest, brokerURL: String, busCACertificate: String? = nil, agentURL: String, token: String?, sha256: String,
        installDirectory: String, heartbeatInterval: Double
    ) -> String {
        let home = SSHScripts.home(installDirectory: installDirectory, instanceID: request.instanceID)
        let environment = AgentLaunch.environment(request, brokerURL: brokerURL, home: home)
        let arguments = AgentLaunch.arguments(request, home: home, heartbeatInterval: heartbeatInterval, logLevel: "warning")
        let q = SSHScripts.quote
        let download = """
            #!/bin/sh
            # Conductor: installs and starts the agent of \(request.member) (\(request.deployment)@\(request.environment)).
            # Written by conductor's ec2 provider; cloud-init runs it once at first boot.
            exec >> /var/log/conductor-bootstrap.log 2>&1 || true
            bin=\(q(installDirectory + "/bin/conductor"))
            want=\(q(sha256))
            if [ "$(sha256sum "$bin" 2>/dev/null | cut -d' ' -f1)" != "$want" ]; then
                mkdir -p "$(dirname "$bin")"
                tmp="$bin.download.$$"
                fetched=
                for attempt in 1 2 3 4 5; do
                    if command -v curl >/dev/null 2>&1; then
                        curl -fsS --connect-timeout 10 --max-time 600\(token.map { " -H " + q("Authorization: Bearer \($0)") } ?? "") -o "$tmp" \(q(agentURL)) && fetched=1 && break
                    elif command -v wget >/dev/null 2>&1; then
                        wget -q -T 60\(token.map { " --header=" + q("Authorization: Bearer \($0)") } ?? "") -O "$tmp" \(q(agentURL)) && fetched=1 && break
                    else
                        echo "conductor: neither curl nor wget to download the agent"; exit 1
                    fi
                    sleep $((attempt * 2))
                done
                [ -n "$fetched" ] || { echo "conductor: could not download the agent from \(agentURL)"; rm -f "$tmp"; exit 1; }
                if [ "$(sha256sum "$tmp" | cut -d' ' -f1)" != "$want" ]; then
                    echo "conductor: the agent downloaded from \(agentURL) has another SHA-256 than $want; refused"
                    rm -f "$tmp"
                    exit 1
                fi
                chmod 755 "$tmp" && mv -f "$tmp" "$bin"
            fi

            """
        // The same steps as over SSH, from "running already?" to "started".
        return download + SSHScripts.ensure(
            installDirectory: installDirectory, instanceID: request.instanceID, sha256: sha256, environment: environment,
            busCACertificate: busCACertificate, agentArguments: arguments, description: "\(request.member) of \(request.deployment)@\(request.environment)")
    }
}
