import Foundation
import HarnessCore
import HarnessCoreML
import SwiftUI
#if canImport(UIKit)
import UIKit
#endif

/// State of the screen: publishes HarnessCore's ``RunBoard`` and runs ``BenchmarkSession``.
///
/// The run is one `Task` on the main actor that awaits the session; the session times every
/// model on its own high-priority thread, so the main thread stays free. Callbacks from that
/// thread come back with `Task { @MainActor in ... }` holding a strong reference to this
/// object: a `@MainActor` class is `Sendable`, and the view model lives as long as the app,
/// so nothing captures a `weak var` across concurrency domains (an error since Swift 5.10).
@MainActor
final class BenchmarkViewModel: ObservableObject {
    @Published private(set) var board = RunBoard(models: [])
    @Published private(set) var isRunning = false
    @Published private(set) var progress: BenchmarkProgress?
    @Published private(set) var reportURL: URL?
    @Published private(set) var configurationText = ""
    @Published private(set) var deviceText = ""

    private var session: BenchmarkSession<CoreMLBackend>?
    private var cancellation = CancellationFlag()

    init() {
        reload()
    }

    /// Reads the configuration and lists the bundled models again.
    func reload() {
        do {
            let session = try BenchmarkSession<CoreMLBackend>.bundled()
            self.session = session
            board = RunBoard(models: session.models)
            configurationText = "\(session.configuration.summaryText) [\(session.configurationSource)]"
            deviceText = session.header.device.summaryText
        } catch {
            session = nil
            board = RunBoard(models: [])
            board.statusMessage = ErrorText.describe(error)
        }
    }

    /// Runs every model the configuration selects.
    func runAll() {
        start(only: nil)
    }

    /// Runs one model.
    func run(model name: String) {
        start(only: [name])
    }

    /// Stops the run between two predictions; the current model is recorded as cancelled.
    func cancel() {
        cancellation.cancel()
    }

    private func start(only: [String]?) {
        guard let session, !isRunning else { return }
        isRunning = true
        reportURL = nil
        board.statusMessage = nil
        let flag = CancellationFlag()
        cancellation = flag
        setIdleTimerDisabled(true)

        let hooks = BenchmarkHooks(
            progress: { progress in
                guard RunBoard.shouldPublish(progress) else { return }
                Task { @MainActor in self.progress = progress }
            },
            isCancelled: { flag.isCancelled }
        )
        Task {
            let report = await session.run(only: only, hooks: hooks) { result, _ in
                await self.apply(result)
            }
            finish(report)
        }
    }

    private func apply(_ result: ModelResult) {
        board.apply(result)
    }

    private func finish(_ report: HarnessReport) {
        isRunning = false
        progress = nil
        setIdleTimerDisabled(false)
        do {
            let url = try ReportStore.write(report, inDirectory: ReportStore.documentsReportsDirectory())
            reportURL = url
            board.statusMessage = RunBoard.savedMessage(for: report, fileName: url.lastPathComponent)
        } catch {
            board.statusMessage = "Could not save the report: \(ErrorText.describe(error))"
        }
    }

    /// Keeps the screen on during a run (a locked phone would stop it).
    private func setIdleTimerDisabled(_ disabled: Bool) {
        #if canImport(UIKit)
        UIApplication.shared.isIdleTimerDisabled = disabled
        #endif
    }
}
