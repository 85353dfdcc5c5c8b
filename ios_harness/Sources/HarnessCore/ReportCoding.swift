import Foundation

/// JSON encoding and decoding of reports, and the marked stdout line.
///
/// Output is deterministic: keys sorted (`.sortedKeys`), slashes not escaped, dates as ISO-8601
/// UTC with whole seconds (`2026-11-28T12:00:00Z`), every schema key present (`null` when empty).
public enum ReportCoding {
    /// An encoder producing the schema's JSON: compact (one line) or pretty-printed.
    public static func makeEncoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        var formatting: JSONEncoder.OutputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if pretty {
            formatting.insert(.prettyPrinted)
        }
        encoder.outputFormatting = formatting
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// A decoder for the schema's JSON (ISO-8601 dates).
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Encodes a report; pretty-printed for files, compact for marked lines.
    ///
    /// - Throws: ``ReportError/encodingFailed(_:)``, e.g. for a NaN or infinite number.
    public static func encode(_ report: HarnessReport, pretty: Bool = true) throws -> Data {
        do {
            return try makeEncoder(pretty: pretty).encode(report)
        } catch {
            throw ReportError.encodingFailed(ErrorText.describe(error))
        }
    }

    /// Decodes and validates a report.
    ///
    /// - Throws: `DecodingError`, ``ReportError`` or ``ConfigurationError``.
    public static func decode(_ data: Data) throws -> HarnessReport {
        let report = try makeDecoder().decode(HarnessReport.self, from: data)
        try report.validate()
        return report
    }

    /// The single stdout line that carries `report`:
    /// `MOBILEONE_BENCH_REPORT {"config":{...},...}`: the marker, one space, compact JSON with no
    /// line break (line breaks inside strings are escaped by JSON).
    ///
    /// - Throws: ``ReportError/encodingFailed(_:)`` (only for non-finite numbers).
    public static func markedLine(_ report: HarnessReport) throws -> String {
        let data = try encode(report, pretty: false)
        guard let json = String(data: data, encoding: .utf8) else {
            throw ReportError.encodingFailed("the encoder produced invalid UTF-8")
        }
        return "\(Harness.reportMarker) \(json)"
    }

    /// Every report carried by marked lines in `text` (e.g. a whole `xcodebuild test` log), in order.
    ///
    /// A marked line is any line containing `MOBILEONE_BENCH_REPORT ` followed by a JSON object;
    /// text before the marker (a log prefix) is ignored, as is trailing whitespace.
    ///
    /// - Throws: ``ReportError/badMarkedLine(lineNumber:reason:)`` for a marked line that does not
    ///   hold a valid report.
    public static func reports(inLog text: String) throws -> [HarnessReport] {
        let marker = Harness.reportMarker + " "
        var reports: [HarnessReport] = []
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            guard let range = line.range(of: marker) else { continue }
            let json = line[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard json.hasPrefix("{") else { continue }
            do {
                let report = try decode(Data(json.utf8))
                reports.append(report)
            } catch {
                throw ReportError.badMarkedLine(lineNumber: offset + 1, reason: ErrorText.describe(error))
            }
        }
        return reports
    }
}

/// The marked stdout line for `report` (see ``ReportCoding/markedLine(_:)``).
public func markedLine(_ report: HarnessReport) throws -> String {
    try ReportCoding.markedLine(report)
}

/// Error messages that fit on one line.
public enum ErrorText {
    /// `String(describing:)` of the error (our errors describe themselves; `NSError` prints its
    /// domain, code and message), on one line.
    public static func describe(_ error: Error) -> String {
        oneLine(String(describing: error))
    }

    /// `text` with every line break replaced by a space.
    public static func oneLine(_ text: String) -> String {
        text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).joined(separator: " ")
    }
}
