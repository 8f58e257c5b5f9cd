import AMQPProtocol
import Foundation
import NIOCore
import Testing

@Suite("Fuzz seed corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test("every committed seed is a valid frame stream, so the fuzzer starts from real frames")
    func seedsDecode() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
        #expect(names.count >= 5)
        for name in names {
            let data = try Data(contentsOf: Self.corpus.appendingPathComponent(name))
            var wire = ByteBuffer(bytes: data)
            let decoder = FrameDecoder()
            var frames: [Frame] = []
            while let frame = try decoder.decodeFrame(buffer: &wire) { frames.append(frame) }
            #expect(wire.readableBytes == 0, "\(name)")
            #expect(!frames.isEmpty, "\(name)")
        }
    }
}
