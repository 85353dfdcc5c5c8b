#if canImport(CoreML)
import CoreML
import CoreVideo
import Foundation
import HarnessCore
@testable import HarnessCoreML
import XCTest

/// Checks the Core ML constants the Foundation-only core mirrors. Runs on macOS only.
final class CoreMLMappingTests: XCTestCase {
    func testComputeUnitsMapping() {
        XCTAssertEqual(ComputeUnits.all.mlComputeUnits, .all)
        XCTAssertEqual(ComputeUnits.cpuOnly.mlComputeUnits, .cpuOnly)
        XCTAssertEqual(ComputeUnits.cpuAndGPU.mlComputeUnits, .cpuAndGPU)
        XCTAssertEqual(ComputeUnits.cpuAndNeuralEngine.mlComputeUnits, .cpuAndNeuralEngine)
    }

    func testMultiArrayRawValuesMatchCoreML() {
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.float32.rawValue), .float32)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.float16.rawValue), .float16)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.double.rawValue), .float64)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.int32.rawValue), .int32)
    }

    func testPixelFormatConstantsMatchCoreVideo() {
        XCTAssertEqual(PixelFormatName.bgra32, kCVPixelFormatType_32BGRA)
        XCTAssertEqual(PixelFormatName.argb32, kCVPixelFormatType_32ARGB)
        XCTAssertEqual(PixelFormatName.rgba32, kCVPixelFormatType_32RGBA)
        XCTAssertEqual(PixelFormatName.gray8, kCVPixelFormatType_OneComponent8)
        XCTAssertEqual(PixelFormatName.gray16Half, kCVPixelFormatType_OneComponent16Half)
        XCTAssertEqual(PixelFormatName.gray32Float, kCVPixelFormatType_OneComponent32Float)
    }

    func testPixelBufferIsCreatedAndFilled() throws {
        let buffer = try InputFactory.makePixelBuffer(width: 8, height: 4, format: kCVPixelFormatType_32BGRA, seed: 1, name: "image")
        XCTAssertEqual(CVPixelBufferGetWidth(buffer), 8)
        XCTAssertEqual(CVPixelBufferGetHeight(buffer), 4)
        XCTAssertEqual(CVPixelBufferGetPixelFormatType(buffer), kCVPixelFormatType_32BGRA)
    }

    func testDiscoveryFindsModelFilesInADirectory() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-models-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["b.mlmodelc", "a.mlpackage", "notes.txt"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        let found = try ModelDiscovery.models(at: [directory])
        XCTAssertEqual(found.map(\.name), ["a", "b"])
        XCTAssertEqual(found.map(\.format), [.package, .compiled])
        XCTAssertThrowsError(try ModelDiscovery.models(at: [directory.appendingPathComponent("missing.mlmodelc")]))
        XCTAssertThrowsError(try ModelDiscovery.models(at: [directory.appendingPathComponent("nowhere")]))
    }

    func testCoreMLErrorsArePrintedWithDomainAndCode() {
        let error = NSError(domain: "com.apple.CoreML", code: 0, userInfo: [NSLocalizedDescriptionKey: "Failed to load"])
        XCTAssertEqual(CoreMLErrorText.describe(error), "Failed to load [com.apple.CoreML 0]")
        XCTAssertEqual(CoreMLErrorText.describe(InputPreparationError.unknownShape(name: "x")), "input x: the model gives no usable shape")
    }
}
#endif
