// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `connection` class (id 10): Work with socket connections.
    public enum Connection {
        public static let classID: UInt16 = 10
    }
}

extension AMQP.Connection {
    /// `connection.start`: Start connection negotiation.
    ///
    /// This method starts the connection negotiation process by telling the client the
    /// protocol version that the server proposes, along with a list of security mechanisms
    /// which the client can use for authentication.
    ///
    /// Rule protocol-name: If the server cannot support the protocol specified in the
    /// protocol header, it MUST respond with a valid protocol header and then close the
    /// socket connection.
    ///
    /// Rule server-support: The server MUST provide a protocol version that is lower than
    /// or equal to that requested by the client in the protocol header.
    ///
    /// Rule client-support: If the client cannot handle the protocol version suggested by
    /// the server it MUST close the socket connection without sending any further data.
    public struct Start: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 10
        public static let name = "connection.start"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["connection.start-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// Protocol major version.
        ///
        /// The major version number can take any value from 0 to 99 as defined in the AMQP
        /// specification.
        public var versionMajor: UInt8

        /// Protocol minor version.
        ///
        /// The minor version number can take any value from 0 to 99 as defined in the AMQP
        /// specification.
        public var versionMinor: UInt8

        /// Server properties.
        ///
        /// Rule required-fields: The properties SHOULD contain at least these fields:
        /// "host", specifying the server host name or address, "product", giving the name
        /// of the server product, "version", giving the name of the server version,
        /// "platform", giving the name of the operating system, "copyright", if
        /// appropriate, and "information", giving other general information.
        public var serverProperties: FieldTable

        /// Available security mechanisms.
        ///
        /// A list of the security mechanisms that the server supports, delimited by spaces.
        public var mechanisms: [UInt8]

        /// Available message locales.
        ///
        /// A list of the message locales that the server supports, delimited by spaces. The
        /// locale defines the language in which the server will send reply texts.
        ///
        /// Rule required-support: The server MUST support at least the en_US locale.
        public var locales: [UInt8]

        @inlinable
        public init(versionMajor: UInt8 = 0, versionMinor: UInt8 = 0, serverProperties: FieldTable = [:], mechanisms: [UInt8] = [], locales: [UInt8] = []) {
            self.versionMajor = versionMajor
            self.versionMinor = versionMinor
            self.serverProperties = serverProperties
            self.mechanisms = mechanisms
            self.locales = locales
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.versionMajor = try buffer.readAMQPOctet()
            self.versionMinor = try buffer.readAMQPOctet()
            self.serverProperties = try buffer.readAMQPFieldTable()
            self.mechanisms = try buffer.readAMQPLongBytes()
            self.locales = try buffer.readAMQPLongBytes()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.versionMajor as UInt8)
            buffer.writeInteger(self.versionMinor as UInt8)
            try buffer.writeAMQPFieldTable(self.serverProperties)
            buffer.writeAMQPLongBytes(self.mechanisms)
            buffer.writeAMQPLongBytes(self.locales)
        }
    }

    /// `connection.start-ok`: Select security mechanism and locale.
    ///
    /// This method selects a SASL security mechanism.
    public struct StartOk: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 11
        public static let name = "connection.start-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Client properties.
        ///
        /// Rule required-fields: The properties SHOULD contain at least these fields:
        /// "product", giving the name of the client product, "version", giving the name of
        /// the client version, "platform", giving the name of the operating system,
        /// "copyright", if appropriate, and "information", giving other general
        /// information.
        public var clientProperties: FieldTable

        /// Selected security mechanism.
        ///
        /// A single security mechanisms selected by the client, which must be one of those
        /// specified by the server.
        ///
        /// Rule security: The client SHOULD authenticate using the highest-level security
        /// profile it can handle from the list provided by the server.
        ///
        /// Rule validity: If the mechanism field does not contain one of the security
        /// mechanisms proposed by the server in the Start method, the server MUST close the
        /// connection without sending any further data.
        public var mechanism: String

        /// Security response data.
        ///
        /// A block of opaque data passed to the security mechanism. The contents of this
        /// data are defined by the SASL security mechanism.
        public var response: [UInt8]

        /// Selected message locale.
        ///
        /// A single message locale selected by the client, which must be one of those
        /// specified by the server.
        public var locale: String

        @inlinable
        public init(clientProperties: FieldTable = [:], mechanism: String = "", response: [UInt8] = [], locale: String = "") {
            self.clientProperties = clientProperties
            self.mechanism = mechanism
            self.response = response
            self.locale = locale
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.clientProperties = try buffer.readAMQPFieldTable()
            self.mechanism = try buffer.readAMQPShortString()
            self.response = try buffer.readAMQPLongBytes()
            self.locale = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPFieldTable(self.clientProperties)
            try buffer.writeAMQPShortString(self.mechanism)
            buffer.writeAMQPLongBytes(self.response)
            try buffer.writeAMQPShortString(self.locale)
        }
    }

    /// `connection.secure`: Security mechanism challenge.
    ///
    /// The SASL protocol works by exchanging challenges and responses until both peers have
    /// received sufficient information to authenticate each other. This method challenges
    /// the client to provide more information.
    public struct Secure: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 20
        public static let name = "connection.secure"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["connection.secure-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// Security challenge data.
        ///
        /// Challenge information, a block of opaque binary data passed to the security
        /// mechanism.
        public var challenge: [UInt8]

        @inlinable
        public init(challenge: [UInt8] = []) {
            self.challenge = challenge
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.challenge = try buffer.readAMQPLongBytes()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeAMQPLongBytes(self.challenge)
        }
    }

    /// `connection.secure-ok`: Security mechanism response.
    ///
    /// This method attempts to authenticate, passing a block of SASL data for the security
    /// mechanism at the server side.
    public struct SecureOk: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 21
        public static let name = "connection.secure-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Security response data.
        ///
        /// A block of opaque data passed to the security mechanism. The contents of this
        /// data are defined by the SASL security mechanism.
        public var response: [UInt8]

        @inlinable
        public init(response: [UInt8] = []) {
            self.response = response
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.response = try buffer.readAMQPLongBytes()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeAMQPLongBytes(self.response)
        }
    }

    /// `connection.tune`: Propose connection tuning parameters.
    ///
    /// This method proposes a set of connection configuration values to the client. The
    /// client can accept and/or adjust these.
    public struct Tune: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 30
        public static let name = "connection.tune"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["connection.tune-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// Proposed maximum channels.
        ///
        /// Specifies highest channel number that the server permits. Usable channel numbers
        /// are in the range 1..channel-max. Zero indicates no specified limit.
        public var channelMax: UInt16

        /// Proposed maximum frame size.
        ///
        /// The largest frame size that the server proposes for the connection, including
        /// frame header and end-byte. The client can negotiate a lower value. Zero means
        /// that the server does not impose any specific limit but may reject very large
        /// frames if it cannot allocate resources for them.
        ///
        /// Rule minimum: Until the frame-max has been negotiated, both peers MUST accept
        /// frames of up to frame-min-size octets large, and the minimum negotiated value
        /// for frame-max is also frame-min-size.
        public var frameMax: UInt32

        /// Desired heartbeat delay.
        ///
        /// The delay, in seconds, of the connection heartbeat that the server wants. Zero
        /// means the server does not want a heartbeat.
        public var heartbeat: UInt16

        @inlinable
        public init(channelMax: UInt16 = 0, frameMax: UInt32 = 0, heartbeat: UInt16 = 0) {
            self.channelMax = channelMax
            self.frameMax = frameMax
            self.heartbeat = heartbeat
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.channelMax = try buffer.readAMQPShort()
            self.frameMax = try buffer.readAMQPLong()
            self.heartbeat = try buffer.readAMQPShort()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.channelMax as UInt16)
            buffer.writeInteger(self.frameMax as UInt32)
            buffer.writeInteger(self.heartbeat as UInt16)
        }
    }

    /// `connection.tune-ok`: Negotiate connection tuning parameters.
    ///
    /// This method sends the client's connection tuning parameters to the server. Certain
    /// fields are negotiated, others provide capability information.
    public struct TuneOk: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 31
        public static let name = "connection.tune-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Negotiated maximum channels.
        ///
        /// The maximum total number of channels that the client will use per connection.
        ///
        /// Rule upper-limit: If the client specifies a channel max that is higher than the
        /// value provided by the server, the server MUST close the connection without
        /// attempting a negotiated close. The server may report the error in some fashion
        /// to assist implementors.
        public var channelMax: UInt16

        /// Negotiated maximum frame size.
        ///
        /// The largest frame size that the client and server will use for the connection.
        /// Zero means that the client does not impose any specific limit but may reject
        /// very large frames if it cannot allocate resources for them. Note that the frame-
        /// max limit applies principally to content frames, where large contents can be
        /// broken into frames of arbitrary size.
        ///
        /// Rule minimum: Until the frame-max has been negotiated, both peers MUST accept
        /// frames of up to frame-min-size octets large, and the minimum negotiated value
        /// for frame-max is also frame-min-size.
        ///
        /// Rule upper-limit: If the client specifies a frame max that is higher than the
        /// value provided by the server, the server MUST close the connection without
        /// attempting a negotiated close. The server may report the error in some fashion
        /// to assist implementors.
        public var frameMax: UInt32

        /// Desired heartbeat delay.
        ///
        /// The delay, in seconds, of the connection heartbeat that the client wants. Zero
        /// means the client does not want a heartbeat.
        public var heartbeat: UInt16

        @inlinable
        public init(channelMax: UInt16 = 0, frameMax: UInt32 = 0, heartbeat: UInt16 = 0) {
            self.channelMax = channelMax
            self.frameMax = frameMax
            self.heartbeat = heartbeat
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.channelMax = try buffer.readAMQPShort()
            self.frameMax = try buffer.readAMQPLong()
            self.heartbeat = try buffer.readAMQPShort()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.channelMax as UInt16)
            buffer.writeInteger(self.frameMax as UInt32)
            buffer.writeInteger(self.heartbeat as UInt16)
        }
    }

    /// `connection.open`: Open connection to virtual host.
    ///
    /// This method opens a connection to a virtual host, which is a collection of
    /// resources, and acts to separate multiple application domains within a server. The
    /// server may apply arbitrary limits per virtual host, such as the number of each type
    /// of entity that may be used, per connection and/or in total.
    public struct Open: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 40
        public static let name = "connection.open"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["connection.open-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Virtual host name.
        ///
        /// The name of the virtual host to work with.
        ///
        /// Rule separation: If the server supports multiple virtual hosts, it MUST enforce
        /// a full separation of exchanges, queues, and all associated entities per virtual
        /// host. An application, connected to a specific virtual host, MUST NOT be able to
        /// access resources of another virtual host.
        ///
        /// Rule security: The server SHOULD verify that the client has permission to access
        /// the specified virtual host.
        public var virtualHost: String

        @inlinable
        public init(virtualHost: String = "") {
            self.virtualHost = virtualHost
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.virtualHost = try buffer.readAMQPShortString()
            _ = try buffer.readAMQPShortString()
            _ = try buffer.readAMQPOctet()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.virtualHost)
            try buffer.writeAMQPShortString("")
            buffer.writeInteger(0 as UInt8)
        }
    }

    /// `connection.open-ok`: Signal that connection is ready.
    ///
    /// This method signals to the client that the connection is ready for use.
    public struct OpenOk: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 41
        public static let name = "connection.open-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString("")
        }
    }

    /// `connection.close`: Request a connection close.
    ///
    /// This method indicates that the sender wants to close the connection. This may be due
    /// to internal conditions (e.g. a forced shut-down) or due to an error handling a
    /// specific method, i.e. an exception. When a close is due to an exception, the sender
    /// provides the class and method id of the method which caused the exception.
    ///
    /// Rule stability: After sending this method, any received methods except Close and
    /// Close-OK MUST be discarded. The response to receiving a Close after sending Close
    /// must be to send Close-Ok.
    public struct Close: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 50
        public static let name = "connection.close"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["connection.close-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// replyCode.
        public var replyCode: UInt16

        /// replyText.
        public var replyText: String

        /// Failing method class.
        ///
        /// When the close is provoked by a method exception, this is the class of the
        /// method.
        public var classId: UInt16

        /// Failing method ID.
        ///
        /// When the close is provoked by a method exception, this is the ID of the method.
        public var methodId: UInt16

        @inlinable
        public init(replyCode: UInt16 = 0, replyText: String = "", classId: UInt16 = 0, methodId: UInt16 = 0) {
            self.replyCode = replyCode
            self.replyText = replyText
            self.classId = classId
            self.methodId = methodId
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.replyCode = try buffer.readAMQPShort()
            self.replyText = try buffer.readAMQPShortString()
            self.classId = try buffer.readAMQPShort()
            self.methodId = try buffer.readAMQPShort()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.replyCode as UInt16)
            try buffer.writeAMQPShortString(self.replyText)
            buffer.writeInteger(self.classId as UInt16)
            buffer.writeInteger(self.methodId as UInt16)
        }
    }

    /// `connection.close-ok`: Confirm a connection close.
    ///
    /// This method confirms a Connection.Close method and tells the recipient that it is
    /// safe to release resources for the connection and close the socket.
    ///
    /// Rule reporting: A peer that detects a socket closure without having received a
    /// Close-Ok handshake method SHOULD log the error.
    public struct CloseOk: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 51
        public static let name = "connection.close-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `connection.blocked`: Indicate that connection is blocked.
    ///
    /// This method indicates that a connection has been blocked and does not accept new
    /// publishes.
    public struct Blocked: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 60
        public static let name = "connection.blocked"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// Block reason.
        ///
        /// The reason the connection was blocked.
        public var reason: String

        @inlinable
        public init(reason: String = "") {
            self.reason = reason
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.reason = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.reason)
        }
    }

    /// `connection.unblocked`: Indicate that connection is unblocked.
    ///
    /// This method indicates that a connection has been unblocked and now accepts
    /// publishes.
    public struct Unblocked: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 61
        public static let name = "connection.unblocked"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `connection.update-secret`: Update secret.
    ///
    /// This method updates the secret used to authenticate this connection. It is used when
    /// secrets have an expiration date and need to be renewed, like OAuth 2 tokens.
    public struct UpdateSecret: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 70
        public static let name = "connection.update-secret"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["connection.update-secret-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// New secret.
        ///
        /// The new secret.
        public var newSecret: [UInt8]

        /// Reason.
        ///
        /// The reason for the secret update.
        public var reason: String

        @inlinable
        public init(newSecret: [UInt8] = [], reason: String = "") {
            self.newSecret = newSecret
            self.reason = reason
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.newSecret = try buffer.readAMQPLongBytes()
            self.reason = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeAMQPLongBytes(self.newSecret)
            try buffer.writeAMQPShortString(self.reason)
        }
    }

    /// `connection.update-secret-ok`: Update secret response.
    ///
    /// This method confirms the updated secret is valid.
    public struct UpdateSecretOk: MethodPayload {
        public static let classID: UInt16 = 10
        public static let methodID: UInt16 = 71
        public static let name = "connection.update-secret-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }
}
