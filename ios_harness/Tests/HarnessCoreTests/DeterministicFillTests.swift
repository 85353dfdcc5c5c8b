@testable import HarnessCore
import XCTest

final class DeterministicFillTests: XCTestCase {
    func testSplitMix64ReferenceSequence() {
        var generator = SplitMix64(seed: 0)
        XCTAssertEqual(generator.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(generator.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(generator.next(), 0x06C4_5D18_8009_454F)
    }

    func testSignedUnitFloatRange() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<10_000 {
            let value = generator.nextSignedUnitFloat()
            XCTAssertGreaterThanOrEqual(value, -1)
            XCTAssertLessThan(value, 1)
        }
    }

    func testHalfPrecisionMatchesIEEE() {
        // Expected bit patterns computed with numpy's float32 -> float16 conversion.
        let cases: [(Float, UInt16)] = [
            (1.0, 0x3C00), (-2.0, 0xC000), (0.5, 0x3800), (0.1, 0x2E66), (1.0 / 3.0, 0x3555),
            (0.999, 0x3BFE), (65504, 0x7BFF), (65519, 0x7BFF), (65520, 0x7C00),
            (6.103515625e-05, 0x0400), (6.1e-05, 0x03FF), (5.960464477539063e-08, 0x0001),
            (2.9802322387695312e-08, 0x0000), (4.470348358154297e-08, 0x0001), (1e-8, 0x0000),
            (0.0, 0x0000), (-0.0, 0x8000), (.infinity, 0x7C00), (-.infinity, 0xFC00),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(HalfPrecision.bits(from: value), expected, "\(value)")
        }
        let nan = HalfPrecision.bits(from: .nan)
        XCTAssertEqual(nan & 0x7C00, 0x7C00)
        XCTAssertNotEqual(nan & 0x03FF, 0)
    }

    func testFillIsDeterministicAndInRange() {
        func filled(_ type: MultiArrayElementType, count: Int, seed: UInt64) -> [UInt8] {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * type.byteWidth, alignment: 16)
            defer { buffer.deallocate() }
            DeterministicFill.fill(buffer, as: type, seed: seed)
            return Array(buffer)
        }
        for type in MultiArrayElementType.allCases {
            XCTAssertEqual(filled(type, count: 64, seed: 7), filled(type, count: 64, seed: 7), "\(type)")
            XCTAssertNotEqual(filled(type, count: 64, seed: 7), filled(type, count: 64, seed: 8), "\(type)")
        }

        let count = 1000
        let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { floats.deallocate() }
        DeterministicFill.fill(UnsafeMutableRawBufferPointer(floats), as: .float32)
        XCTAssertTrue(floats.allSatisfy { $0 >= -1 && $0 < 1 })
        XCTAssertGreaterThan(Set(floats).count, 900)

        let integers = UnsafeMutableBufferPointer<Int32>.allocate(capacity: count)
        defer { integers.deallocate() }
        DeterministicFill.fill(UnsafeMutableRawBufferPointer(integers), as: .int32)
        XCTAssertTrue(integers.allSatisfy { (0..<10).contains($0) })
    }

    func testFillBytes() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 1)
        defer { buffer.deallocate() }
        DeterministicFill.fillBytes(buffer, seed: 1)
        let first = Array(buffer)
        DeterministicFill.fillBytes(buffer, seed: 1)
        XCTAssertEqual(Array(buffer), first)
        XCTAssertGreaterThan(Set(first).count, 100)
    }

    func testMultiArrayElementTypes() {
        // MLMultiArrayDataType raw values: float 0x10000 | bits, integer 0x20000 | bits.
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: 0x10000 | 32), .float32)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: 0x10000 | 16), .float16)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: 0x10000 | 64), .float64)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: 0x20000 | 32), .int32)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: 0x20000 | 8), .int8)
        XCTAssertNil(MultiArrayElementType(coreMLRawValue: 12345))
        XCTAssertEqual(MultiArrayElementType.float64.reportName, "double")
        XCTAssertEqual(MultiArrayElementType.float32.reportName, "float32")
        XCTAssertEqual(MultiArrayElementType.float16.byteWidth, 2)
    }

    func testPixelFormatNames() {
        XCTAssertEqual(PixelFormatName.fourCharacterCode("BGRA"), 0x4247_5241)
        XCTAssertEqual(PixelFormatName.name(for: 0x4247_5241), "bgra8")
        XCTAssertEqual(PixelFormatName.name(for: 0x20), "argb8")
        XCTAssertEqual(PixelFormatName.name(for: PixelFormatName.fourCharacterCode("RGBA")), "rgba8")
        XCTAssertEqual(PixelFormatName.name(for: PixelFormatName.fourCharacterCode("L008")), "gray8")
        XCTAssertEqual(PixelFormatName.name(for: PixelFormatName.fourCharacterCode("L00h")), "gray16half")
        XCTAssertEqual(PixelFormatName.name(for: PixelFormatName.fourCharacterCode("L00f")), "gray32float")
        XCTAssertEqual(PixelFormatName.name(for: PixelFormatName.fourCharacterCode("420f")), "fourcc:420f")
        XCTAssertEqual(PixelFormatName.name(for: 1), "unknown:1")
        XCTAssertEqual(PixelFormatName.elementType(for: PixelFormatName.gray16Half), .float16)
        XCTAssertNil(PixelFormatName.elementType(for: PixelFormatName.bgra32))
    }
}
