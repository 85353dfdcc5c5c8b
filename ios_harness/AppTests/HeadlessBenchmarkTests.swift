import Foundation
import HarnessCore
import HarnessCoreML
import XCTest

/// The headless entry the Python CLI drives with
///
///     xcodebuild test -project MobileOneBench.xcodeproj -scheme MobileOneBenchApp \
///         -destination 'id=<UDID>' -only-testing:MobileOneBenchAppTests/HeadlessBenchmarkTests
///
/// Hosted by the app, so `Bundle.main` is the app bundle with its `Models/` and
/// `run_config.json`. The configuration comes from `MOBILEONE_BENCH_CONFIG` (a path or inline
/// JSON; pass it as `TEST_RUNNER_MOBILEONE_BENCH_CONFIG=...` to xcodebuild), else the bundled
/// `run_config.json`, else the defaults.
///
/// Each model's result is printed as soon as it exists, as one line
/// `MOBILEONE_BENCH_REPORT <report JSON>` holding a complete report with that single result;
/// a model that fails is data (status "error"), not a test failure. The whole report is also
/// written to the app's Documents/reports and attached to the test result (.xcresult).
/// The test fails only when the configuration is invalid or no model is bundled.
final class HeadlessBenchmarkTests: XCTestCase {
    func testBenchmarkBundledModels() async throws {
        let session = try BenchmarkSession.bundled()
        Self.log("config: \(session.configurationSource) (\(session.configuration.summaryText))")
        Self.log("device: \(session.header.device.summaryText)")
        Self.log("models found: \(session.models.map(\.name).joined(separator: ", "))")
        guard !session.models.isEmpty else {
            XCTFail("no models bundled: stage compiled .mlmodelc folders into ios_harness/App/Models/ and rebuild")
            return
        }

        var unprintable: [String] = []
        let report = await session.run { result in
            Self.log("\(result.model): \(result.displayText)")
            do {
                let line = try ReportCoding.markedLine(session.report(for: result))
                Self.emit(line)
            } catch {
                unprintable.append("\(result.model): \(ErrorText.describe(error))")
            }
        }
        XCTAssertTrue(unprintable.isEmpty, "results that could not be printed: \(unprintable)")

        let data = try ReportCoding.encode(report, pretty: true)
        let attachment = XCTAttachment(data: data, uniformTypeIdentifier: "public.json")
        attachment.name = ReportStore.fileName(for: report)
        attachment.lifetime = .keepAlways
        await MainActor.run {
            self.add(attachment)
        }

        do {
            let url = try ReportStore.write(report, inDirectory: ReportStore.documentsReportsDirectory())
            let failed = report.results.filter { $0.status != .ok }.count
            Self.log("report written to Documents/reports/\(url.lastPathComponent) (\(report.results.count) models, \(failed) failed)")
        } catch {
            Self.log("could not write the report to Documents: \(ErrorText.describe(error))")
        }
    }

    /// A human-readable line on stdout (ignored by the Python CLI).
    private static func log(_ text: String) {
        emit("\(Harness.logPrefix) \(text)")
    }

    /// Prints a line and flushes stdout at once, so that a crash later loses nothing.
    private static func emit(_ line: String) {
        print(line)
        fflush(stdout)
    }
}
