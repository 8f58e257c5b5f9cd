// libFuzzer entry point for the AMQP frame decoder. Built only by scripts/fuzz.sh
// (CONDUCTOR_FUZZ=1, -sanitize=fuzzer -parse-as-library).
//
// Every input is decoded as a frame stream with several frame_max limits, fed whole and in
// small chunks (which must agree), pushed through per-channel ContentAssemblers, and every
// decoded frame is re-encoded and decoded again, which must give the same frame. Any
// disagreement traps: that is a codec bug, not a bad input.

import AMQPProtocol
import NIOCore

// SwiftPM links an executable with `main` aliased to `<module>_main`, which would hide
// libFuzzer's own `main`; so that symbol hands control to libFuzzer's driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("FrameDecoderFuzzer_main")
public func fuzzerMain(
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in frameDecoderFuzzTest(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    let chunk = 1 + Int(bytes.getInteger(at: 0, as: UInt8.self) ?? 0) % 13

    for limit in [AMQP.frameMinSize, 131_072, 0] as [UInt32] {
        let whole = decodeStream(bytes, maximumFrameSize: limit, chunkSize: nil)
        let chunked = decodeStream(bytes, maximumFrameSize: limit, chunkSize: chunk)
        check(whole.frames == chunked.frames, "chunked feeding decoded different frames")
        check(whole.error == chunked.error, "chunked feeding failed differently")
        assembleContents(whole.frames)
        for frame in whole.frames { checkRoundTrip(frame) }
    }

    // The same bytes as a bare field table and as basic properties.
    var table = bytes
    if let decoded = try? table.readFieldTableBody() { checkRoundTrip(decoded) }
    var properties = bytes
    if let decoded = try? BasicProperties(from: &properties) { checkRoundTrip(decoded) }
    var header = bytes
    _ = header.readAMQPProtocolHeader()
    return 0
}

struct Decoded {
    var frames: [Frame] = []
    var error: ProtocolError.Code?
}

func decodeStream(_ input: ByteBuffer, maximumFrameSize: UInt32, chunkSize: Int?) -> Decoded {
    let decoder = FrameDecoder(maximumFrameSize: maximumFrameSize)
    var result = Decoded()
    var pending = ByteBuffer()
    var input = input
    while input.readableBytes > 0 {
        var piece = input.readSlice(length: min(chunkSize ?? input.readableBytes, input.readableBytes))!
        pending.writeBuffer(&piece)
        do {
            while let frame = try decoder.decodeFrame(buffer: &pending) {
                result.frames.append(frame)
            }
        } catch {
            _ = error.replyCode
            check(!error.message.isEmpty, "error without a message")
            result.error = error.code
            return result
        }
    }
    return result
}

func assembleContents(_ frames: [Frame]) {
    var assemblers: [UInt16: ContentAssembler<AMQP.Method>] = [:]
    for frame in frames {
        var assembler = assemblers[frame.channel] ?? ContentAssembler(maximumBodySize: 1 << 20)
        do {
            switch frame {
            case .method(_, let method):
                if method.hasContent { try assembler.methodReceived(method) }
            case .header(_, let header):
                if let content = try assembler.headerReceived(header) {
                    check(header.bodySize == 0 && content.body.readableBytes == 0, "empty content with a body")
                }
            case .body(_, let body):
                if let content = try assembler.bodyReceived(body) {
                    check(content.body.readableBytes <= 1 << 20, "content above the body limit")
                }
            case .heartbeat:
                break
            }
        } catch {
            assembler.reset()
        }
        assemblers[frame.channel] = assembler
    }
}

func checkRoundTrip(_ frame: Frame) {
    var wire = ByteBuffer()
    do {
        try frame.encode(into: &wire)
    } catch {
        // Decoding replaces invalid UTF-8 in short strings with U+FFFD (3 bytes), so a
        // decoded name can be too long to send back. That is a typed error, not a bug.
        check(error.code == .stringTooLong, "re-encoding a decoded frame failed: \(error)")
        return
    }
    let decoder = FrameDecoder(maximumFrameSize: 0)
    do {
        let again = try decoder.decodeFrame(buffer: &wire)
        check(again == frame, "frame changed in a round trip: \(frame) became \(String(describing: again))")
        check(wire.readableBytes == 0, "re-encoded frame left bytes over")
    } catch {
        fatalError("re-encoded frame does not decode: \(error) (\(frame))")
    }
}

func checkRoundTrip(_ table: FieldTable) {
    var wire = ByteBuffer()
    do {
        try wire.writeAMQPFieldTable(table)
    } catch {
        check(error.code == .stringTooLong, "re-encoding a decoded table failed: \(error)")
        return
    }
    do {
        let again = try wire.readAMQPFieldTable()
        check(again == table, "table changed in a round trip")
    } catch {
        fatalError("re-encoded table does not decode: \(error)")
    }
}

func checkRoundTrip(_ properties: BasicProperties) {
    var wire = ByteBuffer()
    do {
        try properties.encode(into: &wire)
    } catch {
        check(error.code == .stringTooLong, "re-encoding decoded properties failed: \(error)")
        return
    }
    do {
        let again = try BasicProperties(from: &wire)
        check(again == properties, "properties changed in a round trip")
        check(wire.readableBytes == 0, "re-encoded properties left bytes over")
    } catch {
        fatalError("re-encoded properties do not decode: \(error)")
    }
}

@inline(__always)
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError(message()) }
}
