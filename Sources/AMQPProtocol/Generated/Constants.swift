// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

/// Reply codes and frame constants of the specification.
public enum ReplyCode {
    /// `reply-success`.
    public static let replySuccess: UInt16 = 200
    /// `content-too-large` (soft-error).
    public static let contentTooLarge: UInt16 = 311
    /// `no-route` (soft-error).
    public static let noRoute: UInt16 = 312
    /// `no-consumers` (soft-error).
    public static let noConsumers: UInt16 = 313
    /// `connection-forced` (hard-error).
    public static let connectionForced: UInt16 = 320
    /// `invalid-path` (hard-error).
    public static let invalidPath: UInt16 = 402
    /// `access-refused` (soft-error).
    public static let accessRefused: UInt16 = 403
    /// `not-found` (soft-error).
    public static let notFound: UInt16 = 404
    /// `resource-locked` (soft-error).
    public static let resourceLocked: UInt16 = 405
    /// `precondition-failed` (soft-error).
    public static let preconditionFailed: UInt16 = 406
    /// `frame-error` (hard-error).
    public static let frameError: UInt16 = 501
    /// `syntax-error` (hard-error).
    public static let syntaxError: UInt16 = 502
    /// `command-invalid` (hard-error).
    public static let commandInvalid: UInt16 = 503
    /// `channel-error` (hard-error).
    public static let channelError: UInt16 = 504
    /// `unexpected-frame` (hard-error).
    public static let unexpectedFrame: UInt16 = 505
    /// `resource-error` (hard-error).
    public static let resourceError: UInt16 = 506
    /// `not-allowed` (hard-error).
    public static let notAllowed: UInt16 = 530
    /// `not-implemented` (hard-error).
    public static let notImplemented: UInt16 = 540
    /// `internal-error` (hard-error).
    public static let internalError: UInt16 = 541
}

/// Frame-level constants of the specification.
public enum FrameConstants {
    public static let method: Int = 1
    public static let header: Int = 2
    public static let body: Int = 3
    public static let heartbeat: Int = 8
    public static let minSize: Int = 4096
    public static let end: Int = 206
}
