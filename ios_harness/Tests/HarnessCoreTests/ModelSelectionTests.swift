@testable import HarnessCore
import XCTest

final class ModelSelectionTests: XCTestCase {
    func testModelNames() {
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "mobileone_s0.mlmodelc"), "mobileone_s0")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "mobileone_s0.mlpackage"), "mobileone_s0")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "mobileone_s0.mlmodel"), "mobileone_s0")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "mobileone_s0"), "mobileone_s0")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "Models/mobileone_s0.mlmodelc/"), "mobileone_s0")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "resnet.v1.mlmodelc"), "resnet.v1")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "notes.txt"), "notes.txt")
        XCTAssertEqual(ModelSelection.modelName(fromFileName: "UPPER.MLMODELC"), "UPPER")
        XCTAssertTrue(ModelSelection.hasModelExtension("a.mlpackage"))
        XCTAssertFalse(ModelSelection.hasModelExtension("a.json"))
    }

    func testEmptyRequestSelectsEverythingSorted() {
        let selection = ModelSelection.select(from: ["s2", "s0", "s1"], name: { $0 }, requested: [])
        XCTAssertEqual(selection.selected, ["s0", "s1", "s2"])
        XCTAssertEqual(selection.missing, [])
    }

    func testRequestedOrderNamesAndFileNames() {
        let selection = ModelSelection.select(
            from: ["mobileone_s0", "mobileone_s1", "mobilevit_s"],
            name: { $0 },
            requested: ["mobilevit_s", "mobileone_s0.mlmodelc", "efficientnet_b0", "mobileone_s0"]
        )
        XCTAssertEqual(selection.selected, ["mobilevit_s", "mobileone_s0"])
        XCTAssertEqual(selection.missing, ["efficientnet_b0"])
    }

    func testNotFoundResult() {
        let configuration = BenchmarkConfiguration(runs: 20)
        let result = ModelResult.notFound(
            requested: "efficientnet_b0", available: ["mobileone_s0", "mobilevit_s"], configuration: configuration)
        XCTAssertEqual(result.model, "efficientnet_b0")
        XCTAssertEqual(result.file, "efficientnet_b0.mlmodelc")
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(result.errorMessage, "not found: no model named 'efficientnet_b0' (available: mobileone_s0, mobilevit_s)")
        XCTAssertEqual(result.runs, 20)
        XCTAssertEqual(result.validationProblems(path: "r"), [])

        let byFile = ModelResult.notFound(requested: "x.mlpackage", available: [], configuration: configuration)
        XCTAssertEqual(byFile.model, "x")
        XCTAssertEqual(byFile.file, "x.mlpackage")
        XCTAssertEqual(byFile.errorMessage, "not found: no model named 'x' (no models available)")
    }
}
