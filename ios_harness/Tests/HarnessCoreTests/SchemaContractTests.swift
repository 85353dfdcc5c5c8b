import Foundation
@testable import HarnessCore
import XCTest

/// The contract between the Swift harness and the Python side: the shared fixtures in
/// `tests/fixtures/harness/` and the JSON Schema in `mobileone_bench/data/`.
final class SchemaContractTests: XCTestCase {
    // MARK: - report_ok.json

    func testReportOkDecodesValidatesAndRoundTrips() throws {
        let original = try Fixtures.data("report_ok.json")
        let report = try ReportCoding.decode(original)
        XCTAssertEqual(report.results.count, 2)
        XCTAssertTrue(report.results.allSatisfy { $0.status == .ok })
        XCTAssertEqual(report.device.modelIdentifier, "iPhone13,2")
        XCTAssertEqual(report.config.runs, 20)
        XCTAssertEqual(report.created, Date(timeIntervalSince1970: 1_795_867_200))

        // Re-encoding loses nothing and adds nothing: same JSON value as the fixture.
        let reencoded = try ReportCoding.encode(report, pretty: true)
        XCTAssertEqual(try JSONValue.parse(reencoded), try JSONValue.parse(original))
        XCTAssertEqual(try ReportCoding.decode(reencoded), report)
    }

    func testFixtureSummariesMatchTheStatisticsDefinitions() throws {
        for name in ["report_ok.json", "report_partial_failure.json", "report_thermal.json"] {
            let report = try ReportCoding.decode(Fixtures.data(name))
            for result in report.results where result.status == .ok {
                let expected = try XCTUnwrap(result.summary)
                let computed = try XCTUnwrap(Statistics.summarize(result.samplesMs))
                XCTAssertEqual(computed.n, expected.n)
                XCTAssertEqual(computed.min, expected.min)
                XCTAssertEqual(computed.median, expected.median, accuracy: 1e-9, "\(name) \(result.model)")
                XCTAssertEqual(computed.mean, expected.mean, accuracy: 1e-9, "\(name) \(result.model)")
                XCTAssertEqual(computed.std, expected.std, accuracy: 1e-9, "\(name) \(result.model)")
                XCTAssertEqual(computed.p90, expected.p90, accuracy: 1e-9, "\(name) \(result.model)")
                XCTAssertEqual(computed.p99, expected.p99, accuracy: 1e-9, "\(name) \(result.model)")
                XCTAssertEqual(computed.trimmedMean, expected.trimmedMean, accuracy: 1e-9, "\(name) \(result.model)")
            }
        }
    }

    // MARK: - report_thermal.json (harness 0.2 fields) and reports without them (harness 0.1)

    func testPerModelConditionsAndRunsBeforeTiming() throws {
        let original = try Fixtures.data("report_thermal.json")
        let report = try ReportCoding.decode(original)
        let result = try XCTUnwrap(report.results.first)
        XCTAssertEqual(result.runsBeforeTiming, 1)
        XCTAssertEqual(result.warmup, 0)
        XCTAssertEqual(result.conditionsBefore, DeviceConditions(thermalState: .fair, lowPowerMode: false))
        XCTAssertEqual(result.conditionsAfter, DeviceConditions(thermalState: .serious, lowPowerMode: false))
        XCTAssertEqual(try JSONValue.parse(ReportCoding.encode(report)), try JSONValue.parse(original))

        let ok = try ReportCoding.decode(Fixtures.data("report_ok.json"))
        XCTAssertEqual(ok.results.map(\.runsBeforeTiming), [2, 2])
        // Harness 0.1 reports lack the new keys; they decode, and re-encode without them.
        let old = try ReportCoding.decode(Fixtures.data("report_partial_failure.json"))
        XCTAssertTrue(old.results.allSatisfy { $0.runsBeforeTiming == nil && $0.conditionsBefore == nil && $0.conditionsAfter == nil })
        let compact = String(decoding: try ReportCoding.encode(old, pretty: false), as: UTF8.self)
        XCTAssertFalse(compact.contains("conditions_before"))

        // A wrong count is caught.
        var wrong = report
        wrong.results[0].runsBeforeTiming = 3
        XCTAssertTrue(wrong.validationProblems().contains { $0.hasPrefix("results[0].runs_before_timing:") })
        try assertRejected(String(decoding: original, as: UTF8.self).replacingFirst(#""thermal_state": "serious""#, with: #""thermal_state": "hot""#))
        try assertRejected(String(decoding: original, as: UTF8.self).replacingFirst(#""low_power_mode": false,"#, with: #""low_power_mode": false, "extra": 1,"#))
    }

    // MARK: - report_partial_failure.json

    func testPartialFailureDecodes() throws {
        let report = try ReportCoding.decode(Fixtures.data("report_partial_failure.json"))
        XCTAssertEqual(report.results.map(\.status), [.ok, .error, .error])
        XCTAssertEqual(report.results.map(\.model), ["mobileone_s0", "mobilevit_s", "efficientnet_b0"])
        XCTAssertEqual(report.config.computeUnits, .cpuAndNeuralEngine)
        XCTAssertNil(report.config.tag)
        let failed = report.results[1]
        XCTAssertNil(failed.loadMs)
        XCTAssertNil(failed.summary)
        XCTAssertEqual(failed.samplesMs, [])
        XCTAssertTrue(failed.errorMessage?.hasPrefix("load failed:") ?? false)
        XCTAssertEqual(
            report.results[2].errorMessage,
            ModelResult.notFound(requested: "efficientnet_b0", available: ["mobileone_s0", "mobilevit_s"], configuration: report.config).errorMessage
        )
    }

    // MARK: - report_malformed.json

    func testMalformedReportIsRejected() throws {
        let data = try Fixtures.data("report_malformed.json")
        XCTAssertThrowsError(try ReportCoding.decode(data)) { error in
            // The first defect met is schema_version 2.
            XCTAssertEqual(error as? ReportError, .unsupportedSchemaVersion(2))
        }
    }

    func testEachDefectOfTheMalformedFixtureIsRejectedOnItsOwn() throws {
        let ok = try fixtureText("report_ok.json")
        // 1. schema_version 2.
        try assertRejected(ok.replacingFirst(#""schema_version": 1"#, with: #""schema_version": 2"#))
        // 2. status "success" (not in the enum).
        try assertRejected(ok.replacingFirst(#""status": "ok""#, with: #""status": "success""#))
        // 3. a negative sample.
        let withNegative = try replacingFirstSample(in: ok, with: "-0.5")
        try assertRejected(withNegative)
    }

    func testMissingRequiredKeyIsRejected() throws {
        let compact = try compactFixture("report_ok.json")
        try assertRejected(compact.replacingFirst(#""clock":"monotonic-uptime-ns","#, with: ""))
        try assertRejected(compact.replacingFirst(#""error":null,"#, with: ""))
        try assertRejected(compact.replacingFirst(#""tag":"fixture","#, with: ""))
        try assertRejected(compact.replacingFirst(#""low_power_mode":false,"#, with: ""))
    }

    func testUnknownKeyIsRejected() throws {
        let compact = try compactFixture("report_ok.json")
        try assertRejected(compact.replacingFirst(#""tag":"fixture""#, with: #""tag":"fixture","extra":1"#))
        try assertRejected(compact.replacingFirst(#""clock":"#, with: #""note":"x","clock":"#))
        try assertRejected(compact.replacingFirst(#""schema":"#, with: #""comment":"x","schema":"#))
    }

    func testStatusRulesAreEnforced() throws {
        let compact = try compactFixture("report_ok.json")
        // ok -> error without a message, with samples and a summary.
        try assertRejected(compact.replacingFirst(#""status":"ok""#, with: #""status":"error""#))
        // A sample removed: 19 samples for runs = 20.
        var report = try ReportCoding.decode(Fixtures.data("report_ok.json"))
        report.results[0].samplesMs.removeLast()
        XCTAssertThrowsError(try report.validate())
    }

    // MARK: - xcodebuild_test_output.txt

    func testXcodebuildLogCarriesThePartialFailureReport() throws {
        let log = try fixtureText("xcodebuild_test_output.txt")
        let reports = try ReportCoding.reports(inLog: log)
        XCTAssertEqual(reports.count, 3)
        XCTAssertTrue(reports.allSatisfy { $0.results.count == 1 })
        let merged = try HarnessReport.merging(reports)
        XCTAssertEqual(merged, try ReportCoding.decode(Fixtures.data("report_partial_failure.json")))
    }

    func testMarkedLinesAreWhatTheHarnessPrints() throws {
        // Each marked line of the log is byte-for-byte what markedLine(_:) prints for it.
        let log = try fixtureText("xcodebuild_test_output.txt")
        let lines = log.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("MOBILEONE_BENCH_REPORT {") }
        XCTAssertEqual(lines.count, 3)
        for line in lines {
            let report = try ReportCoding.decode(Data(line.dropFirst("MOBILEONE_BENCH_REPORT ".count).utf8))
            XCTAssertEqual(try markedLine(report), String(line))
        }
    }

    // MARK: - the schema file

    func testSchemaListsExactlyTheSwiftKeys() throws {
        let schema = try JSONDecoder().decode(SchemaDocument.self, from: Fixtures.schemaData())
        XCTAssertEqual(schema.id, "https://mobileone-bench.invalid/harness-report-1.json")
        XCTAssertFalse(schema.additionalProperties)
        XCTAssertEqual(Set(schema.required), Set(HarnessReport.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(Set(schema.defs.device.required), Set(DeviceInfo.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(Set(schema.defs.config.required), Set(BenchmarkConfiguration.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(Set(schema.defs.input.required), Set(InputDescription.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(Set(schema.defs.summary.required), Set(SummaryStatistics.CodingKeys.allCases.map(\.rawValue)))
        // Keys added in harness 0.2 are optional, so that reports of 0.1 still validate.
        let resultKeys = Set(ModelResult.CodingKeys.allCases.map(\.rawValue))
        let optionalKeys = Set(ModelResult.optionalKeys.map(\.rawValue))
        XCTAssertEqual(Set(schema.defs.result.required), resultKeys.subtracting(optionalKeys))
        XCTAssertEqual(Set(schema.defs.result.properties), resultKeys)
        XCTAssertEqual(Set(schema.defs.conditions.required), Set(DeviceConditions.CodingKeys.allCases.map(\.rawValue)))
        for object in [schema.defs.device, schema.defs.config, schema.defs.input, schema.defs.summary, schema.defs.result, schema.defs.conditions] {
            XCTAssertFalse(object.additionalProperties)
        }
        XCTAssertEqual(schema.defs.computeUnits.enumValues, ComputeUnits.allCases.map(\.rawValue))
    }

    // MARK: - helpers

    private func fixtureText(_ name: String) throws -> String {
        String(decoding: try Fixtures.data(name), as: UTF8.self)
    }

    /// The fixture re-encoded compactly by the harness, so that text edits are predictable.
    private func compactFixture(_ name: String) throws -> String {
        let report = try ReportCoding.decode(Fixtures.data(name))
        return String(decoding: try ReportCoding.encode(report, pretty: false), as: UTF8.self)
    }

    private func replacingFirstSample(in text: String, with replacement: String) throws -> String {
        guard let key = text.range(of: #""samples_ms": ["#) else {
            throw Fixtures.NotFound(description: "no samples_ms in fixture")
        }
        let rest = text[key.upperBound...]
        guard let end = rest.firstIndex(where: { $0 == "," || $0 == "]" }) else {
            throw Fixtures.NotFound(description: "unterminated samples_ms")
        }
        let valueStart = rest.firstIndex(where: { !$0.isWhitespace }) ?? rest.startIndex
        return String(text[..<valueStart]) + replacement + String(text[end...])
    }

    private func assertRejected(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertThrowsError(try ReportCoding.decode(Data(text.utf8)), file: file, line: line)
    }
}

private extension String {
    /// The string with the first occurrence of `target` replaced; fails loudly if absent.
    func replacingFirst(_ target: String, with replacement: String) throws -> String {
        guard let range = range(of: target) else {
            throw Fixtures.NotFound(description: "\(target) not found")
        }
        return replacingCharacters(in: range, with: replacement)
    }
}

/// The parts of the JSON Schema the contract test compares with the Swift coding keys.
private struct SchemaDocument: Decodable {
    struct Object: Decodable {
        let required: [String]
        let additionalProperties: Bool
        let properties: [String]

        enum CodingKeys: String, CodingKey {
            case required, additionalProperties, properties
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            required = try container.decode([String].self, forKey: .required)
            additionalProperties = try container.decode(Bool.self, forKey: .additionalProperties)
            properties = try container.decode([String: JSONValue].self, forKey: .properties).keys.sorted()
        }
    }

    struct Enumeration: Decodable {
        let enumValues: [String]

        enum CodingKeys: String, CodingKey {
            case enumValues = "enum"
        }
    }

    struct Definitions: Decodable {
        let device: Object
        let config: Object
        let input: Object
        let summary: Object
        let result: Object
        let conditions: Object
        let computeUnits: Enumeration

        enum CodingKeys: String, CodingKey {
            case device, config, input, summary, result
            case conditions = "device_conditions"
            case computeUnits = "compute_units"
        }
    }

    let id: String
    let required: [String]
    let additionalProperties: Bool
    let defs: Definitions

    enum CodingKeys: String, CodingKey {
        case id = "$id"
        case required
        case additionalProperties
        case defs = "$defs"
    }
}
