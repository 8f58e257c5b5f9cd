/// The one rule for names that become environment variables: a deployable's parameters
/// (`conductor validate`), a job's parameters and `run`'s variables (the agent). POSIX
/// allows more; these are the names every shell, `${…}` reference and `--set` takes as they are.
public enum EnvironmentVariableName {
    public static let maximumLength = 63

    /// For messages: what a valid name looks like.
    public static let rule = "a letter, then letters, digits or '_' (at most 63)"

    /// An ASCII letter, then ASCII letters, digits or `_`, at most 63 bytes: the deployable's
    /// rule, the stricter of the two this replaces (the agent also took a leading `_` and any length).
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= Self.maximumLength, Self.isLetter(first) else { return false }
        return name.utf8.allSatisfy { Self.isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// Throws `invalidArguments` naming `what` ("env", "service 's' parameter").
    public static func validate(_ name: String, what: String) throws(MeshError) {
        guard Self.isValid(name) else {
            throw MeshError(.invalidArguments, "\(what) '\(name)' is not a valid environment variable name")
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}
