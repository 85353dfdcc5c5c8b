import Foundation

/// Writes reports to files.
public enum ReportStore {
    /// `mobileone-bench-20261128T120000Z.json`, from the report's creation time (UTC).
    public static func fileName(for report: HarnessReport) -> String {
        "mobileone-bench-\(compactTimestamp(report.created)).json"
    }

    /// `mobileone-bench-20261128T120000Z-mobileone_s0.json`: one model's report of a run (the
    /// headless test attaches one per model).
    public static func fileName(for report: HarnessReport, model: String) -> String {
        let safe = String(model.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" })
        return "mobileone-bench-\(compactTimestamp(report.created))-\(safe).json"
    }

    /// Writes `report` (pretty-printed) atomically to `url`, replacing an existing file.
    ///
    /// - Throws: ``ReportError/encodingFailed(_:)`` or the file system's error.
    public static func write(_ report: HarnessReport, toFile url: URL) throws {
        let data = try ReportCoding.encode(report, pretty: true)
        try data.write(to: url, options: .atomic)
    }

    /// Writes `report` into `directory` (created if needed) under ``fileName(for:)``, adding
    /// `-2`, `-3`, ... rather than replacing an existing report.
    ///
    /// - Returns: the file written.
    @discardableResult
    public static func write(_ report: HarnessReport, inDirectory directory: URL) throws -> URL {
        let manager = FileManager.default
        try manager.createDirectory(at: directory, withIntermediateDirectories: true)
        let base = fileName(for: report)
        let stem = String(base.dropLast(".json".count))
        var candidate = directory.appendingPathComponent(base)
        var counter = 2
        while manager.fileExists(atPath: candidate.path) {
            candidate = directory.appendingPathComponent("\(stem)-\(counter).json")
            counter += 1
        }
        try write(report, toFile: candidate)
        return candidate
    }

    /// `<Documents>/reports`: in the iOS app this is visible in the Files app
    /// (`UIFileSharingEnabled`), under On My iPhone > MobileOne Bench > reports.
    public static func documentsReportsDirectory() throws -> URL {
        let documents = try FileManager.default.url(
            for: .documentDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        return documents.appendingPathComponent("reports", isDirectory: true)
    }

    /// `20261128T120000Z` for 2026-11-28 12:00:00 UTC.
    static func compactTimestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        if let utc = TimeZone(identifier: "UTC") {
            calendar.timeZone = utc
        }
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func padded(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: Swift.max(0, width - text.count)) + text
        }
        return padded(parts.year, 4) + padded(parts.month, 2) + padded(parts.day, 2) + "T"
            + padded(parts.hour, 2) + padded(parts.minute, 2) + padded(parts.second, 2) + "Z"
    }
}

/// A thread-safe flag to stop a running benchmark from another thread (e.g. a Cancel button).
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    /// Asks the benchmark to stop; it does so between predictions.
    public func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }
}
