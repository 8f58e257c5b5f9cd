import AMQPProtocol
import NIOCore

/// Bytes from a hex string; spaces are ignored so expected frames can be grouped by field.
func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0, "odd number of hex digits in test data")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func hex(_ buffer: ByteBuffer) -> String {
    buffer.readableBytesView.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: Swift.max(0, width - self.count)) + self
    }
}

func hexBuffer(_ hexString: String) -> ByteBuffer {
    ByteBuffer(bytes: bytes(hexString))
}

/// Encodes a whole frame.
func encodeFrame(_ frame: Frame) throws -> ByteBuffer {
    var buffer = ByteBuffer()
    try frame.encode(into: &buffer)
    return buffer
}

/// Decodes exactly one frame and insists nothing is left over.
func decodeOneFrame(_ bytes: ByteBuffer, maximumFrameSize: UInt32 = 131_072) throws -> Frame? {
    var input = bytes
    let decoder = FrameDecoder(maximumFrameSize: maximumFrameSize)
    let frame = try decoder.decodeFrame(buffer: &input)
    if frame != nil, input.readableBytes != 0 {
        throw ProtocolError(.malformedFrame, "test helper: \(input.readableBytes) bytes after the frame")
    }
    return frame
}

/// The error a throwing closure throws as a `ProtocolError`, or nil when it does not throw.
func protocolError(_ body: () throws -> Void) -> ProtocolError? {
    do {
        try body()
        return nil
    } catch let error as ProtocolError {
        return error
    } catch {
        return ProtocolError(.malformedFrame, "not a ProtocolError: \(error)")
    }
}

/// Encodes a method's arguments alone (after class and method ids).
func argumentBytes(_ method: AMQP.Method) throws -> [UInt8] {
    var buffer = ByteBuffer()
    try method.encode(into: &buffer)
    buffer.moveReaderIndex(forwardBy: 4)
    return Array(buffer.readableBytesView)
}
