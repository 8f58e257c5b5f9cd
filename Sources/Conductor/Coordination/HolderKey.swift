import Crypto

/// The secret a lock holder gets with its grant: 128 random bits as 32 hex digits. The
/// fencing token is public (`lock_status` shows it), so renewing or releasing needs this
/// key as well; the coordinator keeps only its `HolderKeyHash`.
public struct HolderKey: Hashable, Sendable {
    public let hex: String

    /// A fresh key from the system's cryptographic generator.
    public static func random() -> HolderKey {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        return HolderKey(hex: hexDigits(bytes))
    }

    public var hash: HolderKeyHash { HolderKeyHash(presented: self.hex) }
}

/// The SHA-256 of a holder key, as 64 hex digits: what the lock table and the state store
/// keep, so neither a copy of state.sqlite nor the coordinator's memory gives away a key.
public struct HolderKeyHash: Hashable, Sendable, CustomStringConvertible {
    public let hex: String

    /// The hash of the key a request carried, whatever it looks like: a malformed key
    /// simply does not match.
    public init(presented key: String) {
        self.hex = hexDigits(Array(SHA256.hash(data: Array(key.utf8))))
    }

    /// As stored; nil when the text is not a SHA-256 in hex.
    public init?(stored: String) {
        let digits = stored.utf8
        guard digits.count == SHA256.byteCount * 2,
            digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
        else { return nil }
        self.hex = stored
    }

    public var description: String { "sha256:\(self.hex.prefix(8))…" }

    /// Compares every byte whatever the first difference, so the time taken tells a
    /// caller nothing about how close its guess was.
    public func matches(_ other: HolderKeyHash) -> Bool {
        let left = Array(self.hex.utf8)
        let right = Array(other.hex.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

private func hexDigits(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: text, as: UTF8.self)
}
