import Foundation
@testable import HarnessCore
import XCTest

/// A backend whose compute plan is fixed: each model's plan is `plans[name]`.
private struct PlanBackend: BenchmarkBackend {
    let plans: [String: ComputePlanOutcome]

    func load(_ compiled: CompiledModel, computeUnits: ComputeUnits) throws -> String { compiled.location.name }
    func inputFeatures(of model: String) throws -> [InputFeature] {
        [InputFeature(name: "input", kind: .multiArray(.init(shape: [1, 3, 8, 8], dataTypeRawValue: 0x10020)))]
    }
    func makeInput(_ plan: [InputPlan], for model: String) throws -> Int { 0 }
    func predict(_ model: String, _ input: Int) throws {}
    func computePlan(_ compiled: CompiledModel, computeUnits: ComputeUnits) async -> ComputePlanOutcome {
        plans[compiled.location.name] ?? .unavailable(ComputePlanReport.olderOSMessage)
    }
}

/// The compute-plan document: its JSON matches the shared fixture the Python side reads
/// (`tests/fixtures/apple/compute_plan_ok.json`), and the headless run sends it through the
/// three channels (marked line, attachment, file) before the model's report.
final class ComputePlanTests: XCTestCase {
    private let operations = [
        ComputePlanOperation(function: "main", name: "conv_0_weight", operatorName: "const", preferred: nil, supported: [], cost: nil),
        ComputePlanOperation(function: "main", name: "var_17", operatorName: "ios17.conv", preferred: "neural_engine",
                             supported: ["cpu", "gpu", "neural_engine"], cost: 0.3),
    ]

    private func fixture(_ name: String) throws -> [String: Any] {
        let url = try Fixtures.repositoryRoot().appendingPathComponent("tests/fixtures/apple").appendingPathComponent(name)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func testDocumentHasTheFixturesKeys() throws {
        let header = makeSampleReport()
        let plan = ComputePlanReport(header: header, model: "mobileone_s0", file: "mobileone_s0.mlmodelc", computeUnits: .all,
                                     outcome: .plan(structure: "program", operations: operations))
        let mine = try XCTUnwrap(JSONSerialization.jsonObject(with: plan.encoded(pretty: true)) as? [String: Any])
        let theirs = try fixture("compute_plan_ok.json")
        XCTAssertEqual(Set(mine.keys), Set(theirs.keys))
        let myOp = try XCTUnwrap((mine["operations"] as? [[String: Any]])?.last)
        let theirOp = try XCTUnwrap((theirs["operations"] as? [[String: Any]])?.first)
        XCTAssertEqual(Set(myOp.keys), Set(theirOp.keys))
        XCTAssertEqual(mine["schema"] as? String, "mobileone-bench/compute-plan")
        XCTAssertEqual(mine["status"] as? String, "ok")
        XCTAssertEqual(myOp["operator"] as? String, "ios17.conv")
        XCTAssertEqual(mine["created"] as? String, "2026-11-28T12:00:00Z")
        XCTAssertTrue(mine["error"] is NSNull)
        let unavailable = ComputePlanReport(header: header, model: "m", file: "m.mlmodelc", computeUnits: .all,
                                            outcome: .unavailable(ComputePlanReport.olderOSMessage))
        let old = try XCTUnwrap(JSONSerialization.jsonObject(with: unavailable.encoded(pretty: false)) as? [String: Any])
        XCTAssertEqual(Set(old.keys), Set(try fixture("compute_plan_unavailable.json").keys))
        XCTAssertEqual(old["status"] as? String, "unavailable")
        XCTAssertEqual(old["error"] as? String, "MLComputePlan needs iOS 17.4 or macOS 14.4")
        let line = try unavailable.markedLine()
        XCTAssertTrue(line.hasPrefix("MOBILEONE_BENCH_COMPUTE_PLAN {"))
        XCTAssertFalse(line.contains("\n"))
    }

    func testHeadlessRunSendsEachPlanThroughThreeChannelsBeforeItsReport() async throws {
        let folder = try makeModelFolder(["a.mlmodelc", "b.mlmodelc"])
        let reports = folder.appendingPathComponent("reports")
        let backend = PlanBackend(plans: ["a": .plan(structure: "program", operations: operations)])
        let output = CapturedOutput()
        let outcome = await HeadlessRun.run(
            makeSession: {
                BenchmarkSession(backend: backend, configuration: BenchmarkConfiguration(runs: 2), configurationSource: .defaults,
                                 models: try ModelDiscovery.models(at: [folder]), device: fakeDevice,
                                 created: Date(timeIntervalSince1970: 1_795_867_200))
            },
            output: output, reportsDirectory: reports)
        guard case .finished = outcome else { return XCTFail("\(outcome)") }
        let kinds = output.outputLines.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        XCTAssertEqual(kinds, ["MOBILEONE_BENCH_COMPUTE_PLAN", "MOBILEONE_BENCH_REPORT",
                               "MOBILEONE_BENCH_COMPUTE_PLAN", "MOBILEONE_BENCH_REPORT"])
        XCTAssertTrue(output.outputLines[0].contains("\"status\":\"ok\""))
        XCTAssertTrue(output.outputLines[2].contains("\"status\":\"unavailable\""))  // the default: an older OS
        let planNames = output.attachments.map(\.name).filter { $0.hasPrefix("mobileone-bench-compute-plan-") }
        XCTAssertEqual(planNames, ["mobileone-bench-compute-plan-20261128T120000Z-a.json",
                                   "mobileone-bench-compute-plan-20261128T120000Z-b.json"])
        let saved = try FileManager.default.contentsOfDirectory(atPath: reports.path).sorted()
        XCTAssertEqual(saved, ["mobileone-bench-20261128T120000Z.json", "mobileone-bench-compute-plan-20261128T120000Z-a.json",
                               "mobileone-bench-compute-plan-20261128T120000Z-b.json"])
    }

    func testNoPlanIsAskedWithoutOnPlan() async throws {
        let backend = FakeBackend(clock: FakeClock())
        let session = BenchmarkSession(backend: backend, configuration: BenchmarkConfiguration(runs: 1), configurationSource: .defaults,
                                       models: [ModelLocation(url: URL(fileURLWithPath: "/models/a.mlmodelc"))!],
                                       device: fakeDevice, clock: backend.clock)
        let seen = Recorder<String>()
        _ = await session.run(onPlan: { plan in seen.append(plan.status) })
        XCTAssertEqual(seen.all, ["unavailable"])  // a backend without a plan says so
        let report = await session.run()
        XCTAssertEqual(report.results.count, 1)
    }
}
