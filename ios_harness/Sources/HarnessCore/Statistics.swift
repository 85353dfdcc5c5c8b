import Foundation

/// Statistics over a model's samples, for the on-screen and log summary.
///
/// The Python side recomputes everything from the raw samples (`samples_ms`) with
/// `mobileone_bench.stats`; these values only have to be right, not authoritative. The
/// definitions follow numpy / scipy so that both sides agree:
///
/// - `median`, `p90`, `p99`: ``Statistics/percentile(ofSorted:_:)`` (linear interpolation
///   between closest ranks, numpy's default `method="linear"`).
/// - `std`: population standard deviation, ddof = 0 (numpy's default).
/// - `trimmedMean`: mean after dropping `floor(0.1 * n)` samples from each end
///   (`scipy.stats.trim_mean(x, 0.1)`).
public struct SummaryStatistics: Codable, Equatable, Sendable {
    /// Number of samples.
    public var n: Int
    /// Smallest sample: the statistic the MobileOne paper reports for the iPhone.
    public var min: Double
    /// 50th percentile.
    public var median: Double
    /// Arithmetic mean.
    public var mean: Double
    /// Population standard deviation (ddof = 0).
    public var std: Double
    /// 90th percentile.
    public var p90: Double
    /// 99th percentile.
    public var p99: Double
    /// Mean after dropping `floor(0.1 * n)` samples from each end.
    public var trimmedMean: Double

    public init(n: Int, min: Double, median: Double, mean: Double, std: Double, p90: Double, p99: Double, trimmedMean: Double) {
        self.n = n
        self.min = min
        self.median = median
        self.mean = mean
        self.std = std
        self.p90 = p90
        self.p99 = p99
        self.trimmedMean = trimmedMean
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case n, min, median, mean, std, p90, p99
        case trimmedMean = "trimmed_mean"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        n = try container.decode(Int.self, forKey: .n)
        min = try container.decode(Double.self, forKey: .min)
        median = try container.decode(Double.self, forKey: .median)
        mean = try container.decode(Double.self, forKey: .mean)
        std = try container.decode(Double.self, forKey: .std)
        p90 = try container.decode(Double.self, forKey: .p90)
        p99 = try container.decode(Double.self, forKey: .p99)
        trimmedMean = try container.decode(Double.self, forKey: .trimmedMean)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(n, forKey: .n)
        try container.encode(min, forKey: .min)
        try container.encode(median, forKey: .median)
        try container.encode(mean, forKey: .mean)
        try container.encode(std, forKey: .std)
        try container.encode(p90, forKey: .p90)
        try container.encode(p99, forKey: .p99)
        try container.encode(trimmedMean, forKey: .trimmedMean)
    }

    /// `min 0.803 ms, median 0.827 ms, mean 0.840 ms (n = 20)`.
    public var displayText: String {
        "min \(DisplayFormat.milliseconds(min)), median \(DisplayFormat.milliseconds(median)), "
            + "mean \(DisplayFormat.milliseconds(mean)) (n = \(n))"
    }
}

/// The statistics functions behind ``SummaryStatistics``.
public enum Statistics {
    /// Fraction of samples dropped from each end by the trimmed mean.
    public static let defaultTrimFraction = 0.1

    /// Summarizes `samples`; nil when there are none.
    ///
    /// - Parameters:
    ///   - samples: latencies in milliseconds, in any order.
    ///   - trimFraction: fraction cut from each end for the trimmed mean, in `[0, 0.5)`;
    ///     values outside are clamped.
    public static func summarize(_ samples: [Double], trimFraction: Double = Statistics.defaultTrimFraction) -> SummaryStatistics? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let average = mean(ofSorted: sorted)
        return SummaryStatistics(
            n: sorted.count,
            min: sorted[0],
            median: percentile(ofSorted: sorted, 0.5),
            mean: average,
            std: populationStandardDeviation(ofSorted: sorted, mean: average),
            p90: percentile(ofSorted: sorted, 0.9),
            p99: percentile(ofSorted: sorted, 0.99),
            trimmedMean: trimmedMean(ofSorted: sorted, cutFraction: trimFraction)
        )
    }

    /// The `q`-quantile of ascending `sorted` values, by linear interpolation between closest
    /// ranks (numpy's default): with `h = (n - 1) * q`, the result is
    /// `x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`.
    ///
    /// - Parameters:
    ///   - sorted: values in ascending order.
    ///   - q: quantile in `[0, 1]` (0.5 is the median); clamped to that range.
    /// - Returns: the quantile, or NaN when `sorted` is empty.
    public static func percentile(ofSorted sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let clamped = Swift.min(Swift.max(q, 0), 1)
        let rank = Double(sorted.count - 1) * clamped
        let lower = Int(rank.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        let fraction = rank - Double(lower)
        return sorted[lower] + fraction * (sorted[upper] - sorted[lower])
    }

    /// Mean of ascending `sorted` values after dropping `floor(cutFraction * n)` values from each
    /// end (`scipy.stats.trim_mean`). NaN when `sorted` is empty.
    public static func trimmedMean(ofSorted sorted: [Double], cutFraction: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let fraction = Swift.min(Swift.max(cutFraction, 0), 0.499_999)
        let cut = Int((fraction * Double(sorted.count)).rounded(.down))
        let kept = sorted[cut..<(sorted.count - cut)]
        return kept.reduce(0, +) / Double(kept.count)
    }

    /// Arithmetic mean, summed in ascending order. NaN when empty.
    public static func mean(ofSorted sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted.reduce(0, +) / Double(sorted.count)
    }

    /// Population standard deviation (ddof = 0) around `mean`. NaN when empty.
    public static func populationStandardDeviation(ofSorted sorted: [Double], mean: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let squares = sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return (squares / Double(sorted.count)).squareRoot()
    }
}

/// Number formatting for logs and the app, the same on every platform (no locale, no
/// `String(format:)`).
public enum DisplayFormat {
    /// `0.8034` -> `"0.803 ms"`: milliseconds with three decimals.
    public static func milliseconds(_ value: Double) -> String {
        "\(fixed(value, decimals: 3)) ms"
    }

    /// `value` rounded to `decimals` decimals, e.g. `fixed(1.5, decimals: 3) == "1.500"`.
    /// Non-finite values print as `nan`, `inf` or `-inf`.
    public static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else {
            return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf")
        }
        let places = Swift.max(0, Swift.min(decimals, 9))
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.0e18 else { return "\(value)" }
        let units = Int64(scaled)
        let divisor = Int64(scale)
        let whole = units / divisor
        let fractionDigits = String(units % divisor)
        let sign = value < 0 && units != 0 ? "-" : ""
        guard places > 0 else { return "\(sign)\(whole)" }
        let padding = String(repeating: "0", count: places - fractionDigits.count)
        return "\(sign)\(whole).\(padding)\(fractionDigits)"
    }
}
