// libFuzzer entry point for the bus's JSON reader, `MeshValue(json:)`. Built only by
// scripts/fuzz.sh (CONDUCTOR_FUZZ=1, -sanitize=fuzzer -parse-as-library).
//
// Every message body on the bus goes through this parser, from any publisher. Each input
// must be read without a crash, and read as JSONDecoder (through MeshValue's Decodable
// conformance, the reader it replaced) reads it: both accept it with the same value, or
// both refuse it (where JSONDecoder is laxer with input that is not JSON, refusing is
// right). What is accepted must come back unchanged from its own JSON. Any disagreement
// traps.

import Foundation
import Mesh

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("MeshJSONFuzzer_main")
public func fuzzerMain(
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in meshJSONFuzzTest(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func meshJSONFuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let ours = try? MeshValue(json: bytes)
    if let ours {
        let again = try? MeshValue(json: ours.jsonBytes)
        check(again == ours, "\(ours) does not read back from its own JSON \(ours.json)")
    }
    // Past the parser's nesting bound the two differ on purpose (JSONDecoder goes deeper).
    guard nesting(bytes) < 500 else { return 0 }
    let theirs = try? JSONDecoder().decode(MeshValue.self, from: Data(bytes))
    // JSONDecoder is laxer with input that is not JSON: it stops at a NUL (`9\0+` is 9
    // to it) and does not check the value of a duplicate key it drops (invalid UTF-8, raw
    // control characters). Refusing those is right; what JSONDecoder made of them must
    // still be read, written out as proper JSON.
    if ours == nil, let theirs {
        check(sameReading(try? MeshValue(json: theirs.jsonBytes), theirs), "MeshValue(json:) refuses \(theirs.json)")
        return 0
    }
    check(sameReading(ours, theirs), "MeshValue(json:) read \(String(describing: ours)), JSONDecoder \(String(describing: theirs)): \(String(decoding: bytes, as: UTF8.self))")
    return 0
}

/// Equal, except that numbers need only agree to a unit in the last place of a `Double`:
/// past 2^53 the two readers round a long literal differently (`9222530372253037.08` is
/// ...038 to us, ...037 to JSONDecoder, which drops the fraction first).
func sameReading(_ a: MeshValue?, _ b: MeshValue?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case (.some(let a), .some(let b)): return same(a, b)
    default: return false
    }
}

func same(_ a: MeshValue, _ b: MeshValue) -> Bool {
    switch (a, b) {
    case (.list(let x), .list(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    case (.map(let x), .map(let y)):
        return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
    case (.int, .int), (.int, .double), (.double, .int), (.double, .double):
        guard let x = number(a), let y = number(b) else { return false }
        return x == y || abs(x - y) <= Swift.max(x.ulp, y.ulp)
    default:
        return a == b
    }
}

func number(_ value: MeshValue) -> Double? {
    switch value {
    case .int(let i): return Double(i)
    case .double(let d): return d
    default: return nil
    }
}

/// An upper bound of the input's nesting: every bracket counts, even inside strings.
func nesting(_ bytes: [UInt8]) -> Int {
    bytes.reduce(0) { count, byte in byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") ? count + 1 : count }
}

func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError(message()) }
}
