import Foundation
import HarnessCore
import HarnessCoreML
import XCTest
#if canImport(UIKit)
import UIKit
#endif

/// The headless entry the Python CLI drives with
///
///     xcodebuild test -project MobileOneBench.xcodeproj -scheme MobileOneBenchApp \
///         -destination 'id=<UDID>' -only-testing:MobileOneBenchAppTests/HeadlessBenchmarkTests
///
/// Hosted by the app, so `Bundle.main` is the app bundle with its `Models/` and
/// `run_config.json`, and `Documents/` is the app's. The body is HarnessCore's `HeadlessRun`:
/// per model, one marked line on stdout (one `write` call), its report as an attachment of the
/// result bundle, and the report so far in `Documents/reports/`; its compute plan
/// (`MLComputePlan`, iOS 17.4) goes the same three ways just before. A model that fails is data
/// (status "error"); the test fails only when the configuration is invalid or no model is
/// bundled. The screen is kept on (idle timer disabled) for the whole run, as the app does.
final class HeadlessBenchmarkTests: XCTestCase {
    func testBenchmarkBundledModels() async throws {
        await Self.setIdleTimerDisabled(true)
        let output = AttachingOutput(test: self)
        let outcome = await HeadlessRun.run(
            makeSession: { try BenchmarkSession<CoreMLBackend>.bundled() },
            output: output,
            reportsDirectory: try? ReportStore.documentsReportsDirectory()
        )
        await output.flushAttachments()
        await Self.setIdleTimerDisabled(false)
        if case let .failed(message) = outcome {
            XCTFail(message)
        }
    }

    /// `UIApplication.isIdleTimerDisabled`, as the app sets it while it runs: the test is hosted
    /// by the app, in the foreground, so without it the phone may auto-lock mid-run.
    @MainActor
    private static func setIdleTimerDisabled(_ disabled: Bool) {
        #if canImport(UIKit)
        UIApplication.shared.isIdleTimerDisabled = disabled
        #endif
    }
}

/// Writes lines to stdout (one `write(2)` per line) and collects attachments, which the test
/// adds on the main actor.
private final class AttachingOutput: HarnessOutput, @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [XCTAttachment] = []
    private weak var test: XCTestCase?

    init(test: XCTestCase) {
        self.test = test
    }

    func output(_ line: String) {
        FileDescriptorOutput.writeLine(line, to: 1)
    }

    func log(_ line: String) {
        FileDescriptorOutput.writeLine(line, to: 1)
    }

    func attach(name: String, data: Data) {
        let attachment = XCTAttachment(data: data, uniformTypeIdentifier: "public.json")
        attachment.name = name
        attachment.lifetime = .keepAlways
        lock.lock()
        pending.append(attachment)
        lock.unlock()
        Task { await self.flushAttachments() }
    }

    /// Adds the collected attachments to the test.
    @MainActor
    func flushAttachments() {
        lock.lock()
        let ready = pending
        pending = []
        lock.unlock()
        for attachment in ready {
            test?.add(attachment)
        }
    }
}
