import Foundation
@testable import HarnessCore
import XCTest

final class ReportCodingTests: XCTestCase {
    func testRoundTrip() throws {
        let report = makeSampleReport()
        XCTAssertEqual(report.validationProblems(), [])
        let pretty = try ReportCoding.encode(report, pretty: true)
        XCTAssertEqual(try ReportCoding.decode(pretty), report)
        let compact = try ReportCoding.encode(report, pretty: false)
        XCTAssertEqual(try ReportCoding.decode(compact), report)
        XCTAssertEqual(try JSONValue.parse(pretty), try JSONValue.parse(compact))
    }

    func testEncodingFollowsTheSchemaSpelling() throws {
        let json = String(decoding: try ReportCoding.encode(makeSampleReport(), pretty: false), as: UTF8.self)
        XCTAssertTrue(json.hasPrefix(#"{"config":{"compute_units":"cpu_and_ne","models":[],"runs":3,"tag":null,"warmup":1},"created":"2026-11-28T12:00:00Z","device":{"#), json)
        XCTAssertTrue(json.contains(#""schema":"mobileone-bench/harness-report","schema_version":1"#), json)
        XCTAssertTrue(json.contains(#""low_power_mode":null"#), json)
        XCTAssertTrue(json.contains(#""error":null"#), json)
        XCTAssertTrue(json.contains(#""summary":null"#), json)
        XCTAssertTrue(json.contains(#""load_ms":null"#), json)
        XCTAssertTrue(json.contains(#""clock":"monotonic-uptime-ns""#), json)
        XCTAssertTrue(json.contains(#""trimmed_mean":"#), json)
        XCTAssertTrue(json.contains(#""kind":"multiarray""#), json)
        XCTAssertTrue(json.contains(#""data_type":"float32""#), json)
        XCTAssertTrue(json.contains(#""harness_version":"0.2.0""#), json)
    }

    func testCreatedIsTruncatedToWholeSeconds() throws {
        let report = makeSampleReport(created: Date(timeIntervalSince1970: 1_795_867_200.75))
        XCTAssertEqual(report.created, Date(timeIntervalSince1970: 1_795_867_200))
        XCTAssertEqual(try ReportCoding.decode(ReportCoding.encode(report)), report)
    }

    func testMarkedLineIsOneLine() throws {
        let report = makeSampleReport()
        let line = try markedLine(report)
        XCTAssertTrue(line.hasPrefix("MOBILEONE_BENCH_REPORT {"))
        XCTAssertFalse(line.contains("\n"))
        XCTAssertFalse(line.contains("\r"))
        let json = line.dropFirst("MOBILEONE_BENCH_REPORT ".count)
        XCTAssertEqual(try ReportCoding.decode(Data(json.utf8)), report)
        // The error message had a line break; ModelResult.failure made it one line.
        XCTAssertTrue(line.contains(#"load failed: \"quoted\" second line / slash"#), line)
    }

    func testReportsInLog() throws {
        let report = makeSampleReport()
        let first = try markedLine(report.with(results: [report.results[0]]))
        let second = try markedLine(report.with(results: [report.results[1]]))
        let log = [
            "Test Case '-[Tests testX]' started.",
            "[mobileone-bench] about MOBILEONE_BENCH_REPORT lines",
            first,
            "2026-11-28 12:00:01.000 xctest[1:2] " + second + "   \r",
            "MOBILEONE_BENCH_REPORT",
            "** TEST SUCCEEDED **",
        ].joined(separator: "\n")
        let reports = try ReportCoding.reports(inLog: log)
        XCTAssertEqual(reports.count, 2)
        XCTAssertEqual(try HarnessReport.merging(reports), report)
    }

    func testBadMarkedLineIsReported() {
        let log = "ok\nMOBILEONE_BENCH_REPORT {\"schema\": \"nope\"}\n"
        XCTAssertThrowsError(try ReportCoding.reports(inLog: log)) { error in
            guard case let .badMarkedLine(lineNumber, _)? = error as? ReportError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(lineNumber, 2)
        }
    }

    func testMergingRejectsReportsFromOtherRuns() {
        let a = makeSampleReport()
        let b = makeSampleReport(created: Date(timeIntervalSince1970: 1_795_867_260))
        XCTAssertThrowsError(try HarnessReport.merging([a, b]))
        XCTAssertThrowsError(try HarnessReport.merging([]))
    }

    func testNonFiniteSampleCannotBeEncoded() {
        var report = makeSampleReport()
        report.results[0].samplesMs[0] = .nan
        XCTAssertThrowsError(try markedLine(report)) { error in
            guard case .encodingFailed? = error as? ReportError else {
                return XCTFail("unexpected \(error)")
            }
        }
    }

    func testValidationRules() {
        var report = makeSampleReport()
        report.results[0].samplesMs.removeLast()
        XCTAssertTrue(report.validationProblems().contains { $0.hasPrefix("results[0].samples_ms:") }, "\(report.validationProblems())")

        report = makeSampleReport()
        report.results[0].errorMessage = "but ok"
        XCTAssertTrue(report.validationProblems().contains { $0.hasPrefix("results[0].error:") })

        report = makeSampleReport()
        report.results[1].samplesMs = [1]
        report.results[1].summary = Statistics.summarize([1])
        let problems = report.validationProblems()
        XCTAssertTrue(problems.contains { $0.hasPrefix("results[1].samples_ms:") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("results[1].summary:") }, "\(problems)")

        report = makeSampleReport()
        report.results[0].summary = nil
        XCTAssertThrowsError(try report.validate())

        report = makeSampleReport()
        report.results[0].clock = "wall-clock"
        XCTAssertTrue(report.validationProblems().contains { $0.hasPrefix("results[0].clock:") })

        report = makeSampleReport()
        report.results[0].inputs[0].shape = [1, 0]
        XCTAssertTrue(report.validationProblems().contains { $0.hasPrefix("results[0].inputs[0].shape:") })

        report = makeSampleReport()
        report.config.runs = 0
        XCTAssertTrue(report.validationProblems().contains { $0.hasPrefix("config:") })
    }

    func testReportFileNameAndWrite() throws {
        let report = makeSampleReport()
        XCTAssertEqual(ReportStore.fileName(for: report), "mobileone-bench-20261128T120000Z.json")
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-reports-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try ReportStore.write(report, inDirectory: directory)
        let second = try ReportStore.write(report, inDirectory: directory)
        XCTAssertEqual(first.lastPathComponent, "mobileone-bench-20261128T120000Z.json")
        XCTAssertEqual(second.lastPathComponent, "mobileone-bench-20261128T120000Z-2.json")
        XCTAssertEqual(try ReportCoding.decode(Data(contentsOf: first)), report)
    }

    func testCurrentDeviceMakesAValidReport() throws {
        let device = DeviceInfo.current()
        XCTAssertFalse(device.modelIdentifier.isEmpty)
        XCTAssertFalse(device.osVersion.isEmpty)
        XCTAssertGreaterThanOrEqual(device.processorCount, 1)
        #if os(Linux)
        XCTAssertEqual(device.osName, "Linux")
        XCTAssertEqual(device.modelIdentifier, "unknown")
        XCTAssertEqual(device.thermalState, .unknown)
        XCTAssertNil(device.lowPowerMode)
        #endif
        let report = HarnessReport(device: device, config: BenchmarkConfiguration(), results: [])
        XCTAssertEqual(try ReportCoding.decode(ReportCoding.encode(report)), report)
    }
}
