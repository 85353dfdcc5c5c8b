import Foundation

/// One row of the app's model list.
public struct ModelRow: Identifiable, Equatable, Sendable {
    /// Model name (file stem).
    public let name: String
    /// File name, e.g. `mobileone_s0.mlmodelc`.
    public let fileName: String
    /// The latest result, if the model was run.
    public var result: ModelResult?

    public var id: String { name }

    public init(name: String, fileName: String, result: ModelResult? = nil) {
        self.name = name
        self.fileName = fileName
        self.result = result
    }

    /// `min 0.803 ms  median 0.827 ms  mean 0.840 ms`, the error, or the file name.
    public var headline: String {
        guard let result else { return fileName }
        if result.status == .ok, let summary = result.summary {
            return "min \(DisplayFormat.milliseconds(summary.min))  median \(DisplayFormat.milliseconds(summary.median))  "
                + "mean \(DisplayFormat.milliseconds(summary.mean))"
        }
        return result.errorMessage ?? "error"
    }

    /// `n = 1000, compute units all`, with the thermal state when it rose above nominal; nil
    /// without an ok result.
    public var detail: String? {
        guard let result, result.status == .ok, let summary = result.summary else { return nil }
        var text = "n = \(summary.n), compute units \(result.computeUnits.rawValue)"
        if let after = result.conditionsAfter, after.mayThrottle {
            text += ", \(after.summaryText)"
        }
        return text
    }
}

/// What the app's one screen shows, as plain values: the SwiftUI view model only publishes it.
public struct RunBoard: Equatable, Sendable {
    public private(set) var rows: [ModelRow]
    public var statusMessage: String?

    /// The rows of `models`, none run yet; a message when there are none.
    public init(models: [ModelLocation]) {
        rows = models.map { ModelRow(name: $0.name, fileName: $0.fileName) }
        statusMessage = models.isEmpty
            ? "No models bundled. Put compiled .mlmodelc folders in ios_harness/App/Models/ and rebuild."
            : nil
    }

    /// Shows `result` in its model's row (a new row for a model not listed, e.g. not found).
    public mutating func apply(_ result: ModelResult) {
        if let index = rows.firstIndex(where: { $0.name == result.model }) {
            rows[index].result = result
        } else {
            rows.append(ModelRow(name: result.model, fileName: result.file, result: result))
        }
    }

    /// `Saved reports/<file> (3 models, 1 failed).`
    public static func savedMessage(for report: HarnessReport, fileName: String) -> String {
        let failed = report.results.filter { $0.status != .ok }.count
        return "Saved reports/\(fileName) (\(report.results.count) models, \(failed) failed)."
    }

    /// Whether a progress update is worth publishing: every stage change, and about 100 updates
    /// per model during the timed runs (not one per prediction).
    public static func shouldPublish(_ progress: BenchmarkProgress) -> Bool {
        guard progress.stage == .timing else { return true }
        let step = Swift.max(1, progress.total / 100)
        return progress.completed % step == 0
    }
}
