/// Which addresses keep a listener to this machine, and the words a listener beyond it is
/// refused with when it would speak in clear text. One place for `conductor broker`, the
/// launch bus (`--bus-listen`), the coordinator's HTTP API (`--http`) and the URLs a remote
/// instance is given (`InstanceURL`).
public enum ListenAddress {
    /// 127.0.0.0/8, ::1 and localhost: only this machine connects. The wildcard (0.0.0.0,
    /// ::) is every address of the machine, so it is beyond loopback.
    public static func isLoopback(_ host: String) -> Bool {
        let host = Self.unbracketed(host).lowercased()
        return host.hasPrefix("127.") || host == "::1" || host == "0:0:0:0:0:0:0:1" || host.hasPrefix("::ffff:127.")
            || host == "localhost" || host == "localhost."
    }

    /// 0.0.0.0, :: or nothing: every address of this machine.
    public static func isWildcard(_ host: String) -> Bool {
        let host = Self.unbracketed(host)
        return host.isEmpty || host == "0.0.0.0" || host == "::" || host == "0:0:0:0:0:0:0:0"
    }

    /// What a listener on `listener` (the flag and value as the user gave them) that is
    /// beyond loopback without TLS is refused with: what it `carries` across the network,
    /// and the `remedy` besides `--insecure`.
    public static func clearTextRefusal(_ listener: String, carries: String, remedy: String) -> String {
        "\(listener) would carry \(carries) in clear text to other machines; \(remedy), or --insecure to accept that"
    }

    private static func unbracketed(_ host: String) -> Substring {
        host.hasPrefix("[") && host.hasSuffix("]") ? host.dropFirst().dropLast() : Substring(host)
    }
}
