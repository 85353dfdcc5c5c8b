import Foundation
import HarnessCore
import HarnessCoreML
import SwiftUI
#if canImport(UIKit)
import UIKit
#endif

/// One row of the model list.
struct ModelRow: Identifiable, Equatable {
    /// Model name (file stem).
    let name: String
    /// File name, e.g. `mobileone_s0.mlmodelc`.
    let fileName: String
    /// The latest result, if the model was run.
    var result: ModelResult?

    var id: String { name }
}

/// State of the screen; a thin adapter over ``BenchmarkSession``.
@MainActor
final class BenchmarkViewModel: ObservableObject {
    @Published private(set) var rows: [ModelRow] = []
    @Published private(set) var isRunning = false
    @Published private(set) var progress: BenchmarkProgress?
    @Published private(set) var reportURL: URL?
    @Published private(set) var statusMessage: String?
    @Published private(set) var configurationText = ""
    @Published private(set) var deviceText = ""

    private var session: BenchmarkSession?
    private var cancellation = CancellationFlag()

    init() {
        reload()
    }

    /// Reads the configuration and lists the bundled models again.
    func reload() {
        do {
            let session = try BenchmarkSession.bundled()
            self.session = session
            rows = session.models.map { ModelRow(name: $0.name, fileName: $0.fileName, result: nil) }
            configurationText = "\(session.configuration.summaryText) [\(session.configurationSource)]"
            deviceText = session.header.device.summaryText
            statusMessage = session.models.isEmpty
                ? "No models bundled. Put compiled .mlmodelc folders in ios_harness/App/Models/ and rebuild."
                : nil
        } catch {
            session = nil
            rows = []
            statusMessage = ErrorText.describe(error)
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
        statusMessage = nil
        let flag = CancellationFlag()
        cancellation = flag
        setIdleTimerDisabled(true)

        Task.detached(priority: .userInitiated) { [weak self] in
            let hooks = BenchmarkHooks(
                progress: { progress in
                    // Publish about 100 updates per model, not one per prediction.
                    if progress.stage == .timing {
                        let step = Swift.max(1, progress.total / 100)
                        guard progress.completed % step == 0 else { return }
                    }
                    Task { @MainActor in self?.progress = progress }
                },
                isCancelled: { flag.isCancelled }
            )
            let report = await session.run(only: only, hooks: hooks) { result in
                Task { @MainActor in self?.apply(result) }
            }
            await self?.finish(report)
        }
    }

    private func apply(_ result: ModelResult) {
        if let index = rows.firstIndex(where: { $0.name == result.model }) {
            rows[index].result = result
        } else {
            rows.append(ModelRow(name: result.model, fileName: result.file, result: result))
        }
    }

    private func finish(_ report: HarnessReport) {
        isRunning = false
        progress = nil
        setIdleTimerDisabled(false)
        do {
            let url = try ReportStore.write(report, inDirectory: ReportStore.documentsReportsDirectory())
            reportURL = url
            let failed = report.results.filter { $0.status != .ok }.count
            statusMessage = "Saved reports/\(url.lastPathComponent) (\(report.results.count) models, \(failed) failed)."
        } catch {
            statusMessage = "Could not save the report: \(ErrorText.describe(error))"
        }
    }

    /// Keeps the screen on during a run (a locked phone would stop it).
    private func setIdleTimerDisabled(_ disabled: Bool) {
        #if canImport(UIKit)
        UIApplication.shared.isIdleTimerDisabled = disabled
        #endif
    }
}
