#if canImport(CoreML)
import CoreML
import CoreVideo
import Foundation
import HarnessCore
@testable import HarnessCoreML
import XCTest

/// Checks the Core ML adapter and the Core ML constants the Foundation-only core mirrors. Runs on
/// Apple platforms only (`swift test` on a Mac; scripts/first-mac.sh).
final class CoreMLMappingTests: XCTestCase {
    func testComputeUnitsMapping() {
        XCTAssertEqual(ComputeUnits.all.mlComputeUnits, .all)
        XCTAssertEqual(ComputeUnits.cpuOnly.mlComputeUnits, .cpuOnly)
        XCTAssertEqual(ComputeUnits.cpuAndGPU.mlComputeUnits, .cpuAndGPU)
        XCTAssertEqual(ComputeUnits.cpuAndNeuralEngine.mlComputeUnits, .cpuAndNeuralEngine)
    }

    func testMultiArrayRawValuesMatchCoreML() throws {
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.float32.rawValue), .float32)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.float16.rawValue), .float16)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.double.rawValue), .float64)
        XCTAssertEqual(MultiArrayElementType(coreMLRawValue: MLMultiArrayDataType.int32.rawValue), .int32)
        for type in MultiArrayElementType.allCases where type != .int8 {
            XCTAssertEqual(MultiArrayElementType(coreMLRawValue: try CoreMLBackend.dataType(type, name: "x").rawValue), type, "\(type)")
        }
        // An imported Objective-C enum keeps a raw value it has no name for.
        XCTAssertEqual(MLMultiArrayDataType(rawValue: 0x20000 | 8)?.rawValue, 0x20000 | 8)
        if #available(iOS 26.0, macOS 26.0, *) {
            XCTAssertEqual(try CoreMLBackend.dataType(.int8, name: "x").rawValue, 0x20000 | 8)
        } else {
            XCTAssertThrowsError(try CoreMLBackend.dataType(.int8, name: "x"))  // never a silent int32
        }
    }

    func testComputePlanOfAModelThatDoesNotLoad() async throws {
        let missing = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-\(UUID().uuidString).mlmodelc")
        let location = try XCTUnwrap(ModelLocation(url: missing))
        let outcome = await CoreMLBackend().computePlan(.asIs(location), computeUnits: .all)
        if #available(iOS 17.4, macOS 14.4, *) {
            guard case .failed = outcome else { return XCTFail("\(outcome)") }
        } else {
            XCTAssertEqual(outcome, .unavailable(ComputePlanReport.olderOSMessage))
        }
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
        let plan = InputPlan.image(name: "image", width: 8, height: 4, pixelFormat: kCVPixelFormatType_32BGRA, seed: 1)
        let buffer = try CoreMLBackend.pixelBuffer(plan, name: "image", width: 8, height: 4, format: kCVPixelFormatType_32BGRA)
        XCTAssertEqual(CVPixelBufferGetWidth(buffer), 8)
        XCTAssertEqual(CVPixelBufferGetHeight(buffer), 4)
        XCTAssertEqual(CVPixelBufferGetPixelFormatType(buffer), kCVPixelFormatType_32BGRA)
    }

    func testCoreMLErrorsArePrintedWithDomainAndCode() {
        let error = NSError(domain: "com.apple.CoreML", code: 0, userInfo: [NSLocalizedDescriptionKey: "Failed to load"])
        XCTAssertEqual(CoreMLErrorText.describe(error), "Failed to load [com.apple.CoreML 0]")
        XCTAssertEqual(CoreMLBackend().describe(error), "Failed to load [com.apple.CoreML 0]")
        XCTAssertEqual(CoreMLErrorText.describe(InputPreparationError.unknownShape(name: "x")), "input x: the model gives no usable shape")
    }

    func testALoadFailureIsAResultNotACrash() async throws {
        let missing = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-\(UUID().uuidString).mlmodelc")
        try FileManager.default.createDirectory(at: missing, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: missing) }
        let location = try XCTUnwrap(ModelLocation(url: missing))
        let session = BenchmarkSession(backend: CoreMLBackend(), configuration: BenchmarkConfiguration(runs: 3),
                                       configurationSource: .defaults, models: [location])
        let report = await session.run()
        XCTAssertEqual(report.results.map(\.status), [.error])
        XCTAssertTrue(report.results[0].errorMessage?.hasPrefix("load failed:") ?? false, "\(report.results[0])")
    }
}
#endif
