import Foundation

/// The body of the headless XCTest entry (`AppTests/HeadlessBenchmarkTests.swift` calls it with
/// the Core ML backend and an output that also makes `XCTAttachment`s).
///
/// For each model, as soon as it is done: one marked line on the output, its single-result
/// report as an attachment named `mobileone-bench-<UTC>-<model>.json`, and the report so far
/// saved to `reportsDirectory` (the app's `Documents/reports/`), so that the marked lines, the
/// result bundle and the app's container each carry every finished model, whatever happens to
/// the others. Its compute plan (``ComputePlanReport``) goes the same three ways just before it
/// (`MOBILEONE_BENCH_COMPUTE_PLAN` line, `mobileone-bench-compute-plan-<UTC>-<model>.json`).
/// At the end the whole report is attached and saved again.
public enum HeadlessRun {
    /// How a headless run ended.
    public enum Outcome: Equatable, Sendable {
        /// Every selected model has a result (ok or error) in `report`.
        case finished(HarnessReport)
        /// The run did not start; the test fails with this message.
        case failed(String)
    }

    /// Message of the failure when no model is bundled.
    public static let noModelsMessage =
        "no models bundled: stage compiled .mlmodelc folders into ios_harness/App/Models/ and rebuild"

    /// Runs the session that `makeSession` builds (a configuration error fails the run).
    ///
    /// - Parameters:
    ///   - reportsDirectory: where the report file goes; nil for none.
    ///   - hooks: progress and cancellation for the session.
    public static func run<Backend: BenchmarkBackend>(
        makeSession: () throws -> BenchmarkSession<Backend>,
        output: some HarnessOutput,
        reportsDirectory: URL?,
        hooks: BenchmarkHooks = .empty
    ) async -> Outcome {
        let session: BenchmarkSession<Backend>
        do {
            session = try makeSession()
        } catch {
            let message = ErrorText.describe(error)
            output.progress(message)
            return .failed(message)
        }
        output.progress("config: \(session.configurationSource) (\(session.configuration.summaryText))")
        output.progress("device: \(session.header.device.summaryText)")
        output.progress("models found: \(session.models.map(\.name).joined(separator: ", "))")
        guard !session.models.isEmpty else {
            output.progress(noModelsMessage)
            return .failed(noModelsMessage)
        }

        let fileName = ReportStore.fileName(for: session.header)
        let report = await session.run(hooks: hooks, onResult: { result, soFar in
            output.progress("\(result.model): \(result.displayText)")
            emit(session.report(for: result), output: output)
            if let data = try? ReportCoding.encode(session.report(for: result), pretty: true) {
                output.attach(name: ReportStore.fileName(for: session.header, model: result.model), data: data)
            }
            save(soFar, as: fileName, in: reportsDirectory, output: output, quiet: true)
        }, onPlan: { plan in
            emit(plan, output: output)
            if let data = try? plan.encoded(pretty: true) {
                output.attach(name: plan.fileName(), data: data)
                save(data, as: plan.fileName(), in: reportsDirectory, output: output)
            }
        })

        if let data = try? ReportCoding.encode(report, pretty: true) {
            output.attach(name: fileName, data: data)
        }
        save(report, as: fileName, in: reportsDirectory, output: output, quiet: false)
        return .finished(report)
    }

    /// Prints the marked line of a single-result report (or says why it cannot).
    static func emit(_ report: HarnessReport, output: some HarnessOutput) {
        do {
            output.output(try ReportCoding.markedLine(report))
        } catch {
            let model = report.results.first?.model ?? "?"
            output.progress("\(model): cannot print the report: \(ErrorText.describe(error))")
        }
    }

    /// Prints the marked line of a compute plan (or says why it cannot).
    static func emit(_ plan: ComputePlanReport, output: some HarnessOutput) {
        do {
            output.output(try plan.markedLine())
        } catch {
            output.progress("\(plan.model): cannot print the compute plan: \(ErrorText.describe(error))")
        }
    }

    /// Writes a compute plan's JSON to `directory/fileName` (quietly: a failure is said once).
    static func save(_ data: Data, as fileName: String, in directory: URL?, output: some HarnessOutput) {
        guard let directory else { return }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: directory.appendingPathComponent(fileName), options: .atomic)
        } catch {
            output.progress("could not write \(fileName): \(ErrorText.describe(error))")
        }
    }

    /// Writes `report` to `directory/fileName`, replacing the previous version of this run's file.
    static func save(_ report: HarnessReport, as fileName: String, in directory: URL?, output: some HarnessOutput, quiet: Bool) {
        guard let directory else { return }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try ReportStore.write(report, toFile: directory.appendingPathComponent(fileName))
            if !quiet {
                let failed = report.results.filter { $0.status != .ok }.count
                output.progress("report written to \(directory.lastPathComponent)/\(fileName) (\(report.results.count) models, \(failed) failed)")
            }
        } catch {
            output.progress("could not write the report to \(directory.lastPathComponent): \(ErrorText.describe(error))")
        }
    }
}
