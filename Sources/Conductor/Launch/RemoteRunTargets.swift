import Foundation
import Mesh

/// `conductor run --role R --deployment D`: the instances that should exist for a role,
/// from the state store, as agent names with their member as label.
public enum RoleTargets {
    /// The role of a member: `web[1]` -> `web`, `db` -> `db`.
    public static func role(ofMember member: String) -> String {
        guard let bracket = member.firstIndex(of: "["), member.hasSuffix("]") else { return member }
        return String(member[..<bracket])
    }

    /// Members of `role` in the generation `status` shows (the one being rolled out, else
    /// the active one), except terminated ones, in member order. Empty when the role has
    /// no such instance; `roles(in:)` says which roles there are.
    public static func instances(ofRole role: String, in report: DeploymentStatusReport) -> [InstanceRecord] {
        report.instances.map(\.instance)
            .filter { $0.state != .terminated && Self.role(ofMember: $0.member) == role }
            .sorted { Self.memberOrder($0.member, $1.member) }
    }

    /// Roles with at least one instance that is not terminated, sorted.
    public static func roles(in report: DeploymentStatusReport) -> [String] {
        Set(report.instances.map(\.instance).filter { $0.state != .terminated }.map { Self.role(ofMember: $0.member) }).sorted()
    }

    /// The agent serving an instance, as the launcher addresses it: the agent its provider
    /// handle names (the `agents` provider), else `conductor:agent:<instance id>`.
    public static func agentName(of instance: InstanceRecord) throws -> AgentName {
        try Launcher.agentName(of: instance)
    }

    /// `web[2]` before `web[10]`.
    static func memberOrder(_ lhs: String, _ rhs: String) -> Bool {
        func index(_ member: String) -> Int {
            guard let open = member.firstIndex(of: "["), member.hasSuffix("]") else { return -1 }
            return Int(member[member.index(after: open)..<member.index(before: member.endIndex)]) ?? -1
        }
        let (left, right) = (Self.role(ofMember: lhs), Self.role(ofMember: rhs))
        return left != right ? left < right : index(lhs) < index(rhs)
    }
}
