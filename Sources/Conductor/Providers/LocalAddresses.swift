import Foundation

/// Which loopback address a local member gets, decided from the addresses live local
/// deployments hold: a value, so the choice is tested without processes.
///
/// Two deployments on one /24 would each start servers on the other's addresses; the
/// second's would fail to bind while the first's answered its checks (a false
/// "configured"). So a member never gets an address another deployment holds: on the
/// default addresses it moves to the next /24 no other deployment uses; on addresses
/// the user asked for (`--local-addresses`) it is refused, naming the holder.
public struct LocalAddressPlan: Sendable {
    /// A live process of a local deployment: an agent, or a server its scripts left running.
    public struct Holder: Sendable, Hashable {
        public var address: String
        /// `name@environment`, as the agent's `CONDUCTOR_DEPLOYMENT` says.
        public var deployment: String
        /// The deployment's own directory (its members' directories are in it): two
        /// launches of one deployable from different `--state-dir`s are different deployments.
        public var home: String
        public var member: String?

        public init(address: String, deployment: String, home: String, member: String? = nil) {
            self.address = address
            self.deployment = deployment
            self.home = home
            self.member = member
        }
    }

    public enum Choice: Sendable, Hashable {
        case use(String)
        /// The requested address is another deployment's; `freePrefix` is a /24 no live
        /// deployment uses, to suggest.
        case taken(address: String, by: Holder, freePrefix: String?)
    }

    /// The first three octets to start from.
    public var prefix: (UInt8, UInt8, UInt8)
    /// True when the user named the prefix: then it is used or refused, never moved.
    public var requested: Bool

    public init(prefix: (UInt8, UInt8, UInt8), requested: Bool) {
        self.prefix = prefix
        self.requested = requested
    }

    /// 127.0.0.2 for ordinal 0, `ranges` /24s further up when moved; 250 members per /24,
    /// never .0, .1 or .255.
    public func address(ordinal: Int, movedBy ranges: Int = 0) -> String {
        let third = Int(self.prefix.2) + ranges + ordinal / 250
        let second = Int(self.prefix.1) + third / 256
        return "\(self.prefix.0).\(second % 256).\(third % 256).\(2 + ordinal % 250)"
    }

    /// The address for member `ordinal` of the deployment living in `home`, given what
    /// `holders` hold now. An address of the same deployment (an older generation, a member
    /// started before) is not in the way.
    public func choose(ordinal: Int, home: String, holders: [Holder]) -> Choice {
        let others = holders.filter { $0.home != home }
        let taken = Set(others.compactMap { Self.rangeIndex(of: $0.address) })
        let first = Int(self.prefix.1) * 256 + Int(self.prefix.2)
        if self.requested {
            let wanted = self.address(ordinal: ordinal)
            guard let holder = others.filter({ $0.address == wanted }).min(by: { $0.deployment < $1.deployment }) else { return .use(wanted) }
            let free = (1..<Self.rangesToTry).first { !taken.contains((first + $0) % Self.rangesToTry) }
            return .taken(address: wanted, by: holder, freePrefix: free.map { Self.range(of: self.address(ordinal: 0, movedBy: $0)) })
        }
        // A whole /24 per deployment, so its members stay together and one /24 another
        // deployment has started to fill is not split. A deployment that already has
        // members running keeps to their /24 (a re-run, `fwd`).
        func isFree(_ moved: Int) -> Bool {
            !taken.contains((first + moved + ordinal / 250) % Self.rangesToTry)
        }
        // The deployment's lowest /24 is where its member 0 went: the same move for all.
        let ownMoves = holders.filter { $0.home == home }.compactMap { Self.rangeIndex(of: $0.address) }.map { ($0 - first + Self.rangesToTry) % Self.rangesToTry }
        if let moved = ownMoves.min(), isFree(moved) { return .use(self.address(ordinal: ordinal, movedBy: moved)) }
        let moved = (0..<Self.rangesToTry).first(where: isFree) ?? 0
        return .use(self.address(ordinal: ordinal, movedBy: moved))
    }

    /// 127.0.0.0/8 holds 65,536 /24s; past that the addresses wrap around.
    static let rangesToTry = 65_536

    /// 3 for `127.0.3.7`, 256 for `127.1.0.7`: the /24's place in 127.0.0.0/8.
    static func rangeIndex(of address: String) -> Int? {
        let octets = address.split(separator: ".").compactMap { Int($0) }
        guard octets.count == 4 else { return nil }
        return octets[1] * 256 + octets[2]
    }

    /// `127.0.3` for `127.0.3.7`.
    static func range(of address: String) -> String {
        guard let dot = address.lastIndex(of: ".") else { return address }
        return String(address[..<dot])
    }
}
