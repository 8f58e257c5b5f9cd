import Foundation

/// Why a file cannot be read as text: said in the error, so a user knows what to fix.
enum UnreadableFile: Equatable {
    case missing
    case directory
    case permissionDenied
    /// The first byte that is not UTF-8, where it is (1-based, columns in characters).
    case notUTF8(line: Int, column: Int, byte: UInt8)
    case other(String)

    /// Looks at the file on disk; nil when it is readable UTF-8 text after all.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            self = errno == ENOENT || errno == ENOTDIR ? .missing : Self.posix(errno)
            return
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            self = .directory
            return
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            self = errno == EACCES ? .permissionDenied : Self.posix(errno)
            return
        }
        close(descriptor)
        guard let data = FileManager.default.contents(atPath: path) else {
            self = .other("cannot read it")
            return
        }
        guard let problem = Self.firstInvalidUTF8(data) else { return nil }
        self = problem
    }

    var reason: String {
        switch self {
        case .missing: "no such file"
        case .directory: "it is a directory, not a file"
        case .permissionDenied: "permission denied"
        case .notUTF8(_, _, let byte): "not UTF-8 text (byte 0x\(String(byte, radix: 16, uppercase: true)))"
        case .other(let reason): reason
        }
    }

    /// Where in `file` the problem is, when it is inside the file.
    func location(in file: String) -> FileLocation? {
        guard case .notUTF8(let line, let column, _) = self else { return nil }
        return FileLocation(file: file, line: line, column: column)
    }

    private static func posix(_ code: Int32) -> UnreadableFile { .other(String(cString: strerror(code))) }

    private static func firstInvalidUTF8(_ data: Data) -> UnreadableFile? {
        var decoder = UTF8()
        var bytes = data.makeIterator()
        var (line, column, offset) = (1, 1, 0)
        while true {
            switch decoder.decode(&bytes) {
            case .scalarValue(let scalar):
                offset += UTF8.width(scalar)
                if scalar == "\n" { (line, column) = (line + 1, 1) } else { column += 1 }
            case .emptyInput:
                return nil
            case .error:
                return .notUTF8(line: line, column: column, byte: data[data.startIndex + offset])
            }
        }
    }
}
