import Foundation
@testable import HarnessCore
import XCTest

/// Model discovery and input planning: pure functions over plain values (and temporary folders).
final class PlanningTests: XCTestCase {
    private let float32 = 0x10020
    private let float16 = 0x10010

    func testPlanIsInNameOrderWithSeedsAndDescriptions() throws {
        let plan = try InputPlanner.plan([
            InputFeature(name: "z_image", kind: .image(.init(pixelsWide: 224, pixelsHigh: 160, pixelFormat: PixelFormatName.bgra32))),
            InputFeature(name: "a_array", kind: .multiArray(.init(shape: [1, 3, 224, 224], dataTypeRawValue: float16))),
            InputFeature(name: "m_optional", isOptional: true, kind: .other(typeName: "string")),
        ], seed: 100)
        XCTAssertEqual(plan, [
            .multiArray(name: "a_array", shape: [1, 3, 224, 224], elementType: .float16, seed: 100),
            .image(name: "z_image", width: 224, height: 160, pixelFormat: PixelFormatName.bgra32, seed: 102),
        ])
        XCTAssertEqual(plan.map(\.name), ["a_array", "z_image"])
        XCTAssertEqual(plan.map(\.description), [
            InputDescription(name: "a_array", kind: .multiArray, shape: [1, 3, 224, 224], dataType: "float16"),
            InputDescription(name: "z_image", kind: .image, shape: [160, 224], dataType: "bgra8"),
        ])
        XCTAssertEqual(try InputPlanner.plan([]), [])
    }

    func testShapeRules() throws {
        func shape(_ constraint: InputFeature.MultiArrayConstraint) throws -> [Int] {
            try InputPlanner.resolveShape(of: constraint, name: "x")
        }
        XCTAssertEqual(try shape(.init(shape: [1, 3, 8, 8], dataTypeRawValue: float32)), [1, 3, 8, 8])
        XCTAssertEqual(try shape(.init(shape: [1, 3, 0, 0], dataTypeRawValue: float32, enumeratedShapes: [[1, 3, 224, 224], [1, 3, 256, 256]])), [1, 3, 224, 224])
        XCTAssertEqual(try shape(.init(shape: [], dataTypeRawValue: float32, enumeratedShapes: [[]], rangeLowerBounds: [1, 3, 0, 64])), [1, 3, 1, 64])
        XCTAssertThrowsError(try shape(.init(shape: [], dataTypeRawValue: float32))) { error in
            XCTAssertEqual(error as? InputPreparationError, .unknownShape(name: "x"))
        }
    }

    func testPlanningErrors() {
        let cases: [(InputFeature, InputPreparationError)] = [
            (InputFeature(name: "t", kind: .other(typeName: "string")), .unsupportedFeatureType(name: "t", type: "string")),
            (InputFeature(name: "m", kind: .multiArray(nil)), .missingConstraint(name: "m")),
            (InputFeature(name: "i", kind: .image(nil)), .missingConstraint(name: "i")),
            (InputFeature(name: "q", kind: .multiArray(.init(shape: [1], dataTypeRawValue: 0x20040))), .unsupportedElementType(name: "q", rawValue: 0x20040)),
            (InputFeature(name: "s", kind: .image(.init(pixelsWide: 0, pixelsHigh: 10, pixelFormat: 0))), .unknownImageSize(name: "s", width: 0, height: 10)),
        ]
        for (feature, expected) in cases {
            XCTAssertThrowsError(try InputPlanner.plan([feature])) { error in
                XCTAssertEqual(error as? InputPreparationError, expected)
            }
        }
        XCTAssertEqual(InputPreparationError.unknownImageSize(name: "s", width: 0, height: 10).description,
                       "input s: the model gives no usable image size (0 x 10)")
        XCTAssertEqual(InputPreparationError.allocationFailed(name: "i", reason: "CVPixelBufferCreate failed with status -6661").errorDescription,
                       "input i: CVPixelBufferCreate failed with status -6661")
        XCTAssertEqual(InputPreparationError.missingConstraint(name: "m").description, "input m: the model description lacks its constraint")
        XCTAssertEqual(InputPreparationError.unsupportedElementType(name: "q", rawValue: 7).description, "input q: unknown multi-array data type (raw value 7)")
    }

    func testFillFollowsThePlan() {
        func bytes(_ plan: InputPlan, count: Int, plane: Int = 0) -> [UInt8] {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
            defer { buffer.deallocate() }
            plan.fill(buffer, plane: plane)
            return Array(buffer)
        }
        let array = InputPlan.multiArray(name: "a", shape: [4], elementType: .float32, seed: 9)
        let reference = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 16)
        defer { reference.deallocate() }
        DeterministicFill.fill(reference, as: .float32, seed: 9)
        XCTAssertEqual(bytes(array, count: 16), Array(reference))

        let bgra = InputPlan.image(name: "i", width: 2, height: 2, pixelFormat: PixelFormatName.bgra32, seed: 5)
        DeterministicFill.fillBytes(reference, seed: 6)
        XCTAssertEqual(bytes(bgra, count: 16, plane: 1), Array(reference))
        let half = InputPlan.image(name: "h", width: 2, height: 2, pixelFormat: PixelFormatName.gray16Half, seed: 5)
        DeterministicFill.fill(reference, as: .float16, seed: 5)
        XCTAssertEqual(bytes(half, count: 16), Array(reference))
    }

    func testDiscoveryInFolders() throws {
        let folder = try makeModelFolder(["b.mlmodelc", "a.mlpackage", "c.mlmodel", "notes.txt", ".hidden.mlmodelc", "sub"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let found = try ModelDiscovery.models(at: [folder])
        XCTAssertEqual(found.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(found.map(\.format), [.package, .compiled, .specification])
        XCTAssertEqual(found.map(\.fileName), ["a.mlpackage", "b.mlmodelc", "c.mlmodel"])

        // A file given directly, then a folder with a model of the same name: the first wins.
        let direct = try ModelDiscovery.models(at: [folder.appendingPathComponent("b.mlmodelc"), folder])
        XCTAssertEqual(direct.map(\.name), ["a", "b", "c"])

        XCTAssertThrowsError(try ModelDiscovery.models(at: [folder.appendingPathComponent("missing.mlmodelc")])) { error in
            XCTAssertEqual(error as? ModelDiscoveryError, .notFound(path: folder.appendingPathComponent("missing.mlmodelc").path))
        }
        XCTAssertThrowsError(try ModelDiscovery.models(at: [folder.appendingPathComponent("notes.txt")])) { error in
            XCTAssertEqual(error as? ModelDiscoveryError, .notAModel(path: folder.appendingPathComponent("notes.txt").path))
        }
        XCTAssertThrowsError(try ModelDiscovery.models(inDirectory: folder.appendingPathComponent("nowhere"))) { error in
            guard case .unreadableDirectory? = error as? ModelDiscoveryError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".hasPrefix("cannot list "))
        }
        XCTAssertEqual(ModelDiscoveryError.notFound(path: "/x").errorDescription, "no such file or directory: /x")
        XCTAssertTrue(ModelDiscoveryError.notAModel(path: "/x").description.hasPrefix("not a Core ML model"))
    }

    func testPureDiscoveryRulesAndBundles() throws {
        let urls = ["/r/z.mlmodelc", "/r/a.txt", "/other/z.mlpackage", "/r/y.MLMODELC"].map { URL(fileURLWithPath: $0) }
        let found = ModelDiscovery.locations(among: urls)
        XCTAssertEqual(found.map(\.fileName), ["y.MLMODELC", "z.mlmodelc"])
        XCTAssertNil(ModelLocation(url: URL(fileURLWithPath: "/r/a.txt")))
        XCTAssertEqual(ModelDiscovery.bundledModels(resourceURL: nil), [])
        XCTAssertEqual(ModelDiscovery.bundledModels(resourceURL: URL(fileURLWithPath: "/no/such/bundle")), [])
    }
}
