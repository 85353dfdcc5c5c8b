@testable import HarnessCore
import XCTest

final class StatisticsTests: XCTestCase {
    func testFiveValues() throws {
        let summary = try XCTUnwrap(Statistics.summarize([5, 1, 4, 2, 3]))
        XCTAssertEqual(summary.n, 5)
        XCTAssertEqual(summary.min, 1)
        XCTAssertEqual(summary.median, 3)
        XCTAssertEqual(summary.mean, 3)
        // Population variance: (4 + 1 + 0 + 1 + 4) / 5 = 2.
        XCTAssertEqual(summary.std, 2.0.squareRoot(), accuracy: 1e-12)
        // h = 4 * 0.9 = 3.6 -> 4 + 0.6 * (5 - 4).
        XCTAssertEqual(summary.p90, 4.6, accuracy: 1e-12)
        // h = 4 * 0.99 = 3.96 -> 4 + 0.96 * (5 - 4).
        XCTAssertEqual(summary.p99, 4.96, accuracy: 1e-12)
        // floor(0.1 * 5) = 0 values trimmed.
        XCTAssertEqual(summary.trimmedMean, 3, accuracy: 1e-12)
    }

    func testTenValuesWithOutlier() throws {
        let samples: [Double] = [7, 100, 3, 9, 1, 5, 2, 8, 6, 4]
        let summary = try XCTUnwrap(Statistics.summarize(samples))
        XCTAssertEqual(summary.n, 10)
        XCTAssertEqual(summary.min, 1)
        // h = 9 * 0.5 = 4.5 -> 5 + 0.5 * (6 - 5).
        XCTAssertEqual(summary.median, 5.5, accuracy: 1e-12)
        XCTAssertEqual(summary.mean, 14.5, accuracy: 1e-12)
        // Squared deviations from 14.5 sum to 8182.5; / 10 = 818.25.
        XCTAssertEqual(summary.std, 818.25.squareRoot(), accuracy: 1e-12)
        // h = 8.1 -> 9 + 0.1 * (100 - 9) = 18.1.
        XCTAssertEqual(summary.p90, 18.1, accuracy: 1e-9)
        // h = 8.91 -> 9 + 0.91 * 91 = 91.81.
        XCTAssertEqual(summary.p99, 91.81, accuracy: 1e-9)
        // floor(0.1 * 10) = 1 value cut from each end: mean of 2...9 = 44 / 8.
        XCTAssertEqual(summary.trimmedMean, 5.5, accuracy: 1e-12)
    }

    func testSingleSample() throws {
        let summary = try XCTUnwrap(Statistics.summarize([0.8]))
        XCTAssertEqual(summary, SummaryStatistics(n: 1, min: 0.8, median: 0.8, mean: 0.8, std: 0, p90: 0.8, p99: 0.8, trimmedMean: 0.8))
    }

    func testEmptyHasNoSummary() {
        XCTAssertNil(Statistics.summarize([]))
        XCTAssertTrue(Statistics.percentile(ofSorted: [], 0.5).isNaN)
    }

    func testPercentileEndpointsAndClamping() {
        let sorted: [Double] = [1, 2, 4, 8]
        XCTAssertEqual(Statistics.percentile(ofSorted: sorted, 0), 1)
        XCTAssertEqual(Statistics.percentile(ofSorted: sorted, 1), 8)
        XCTAssertEqual(Statistics.percentile(ofSorted: sorted, -3), 1)
        XCTAssertEqual(Statistics.percentile(ofSorted: sorted, 7), 8)
        // h = 3 * 0.5 = 1.5 -> 2 + 0.5 * (4 - 2).
        XCTAssertEqual(Statistics.percentile(ofSorted: sorted, 0.5), 3)
    }

    func testTrimmedMeanCutsFloorOfFraction() {
        // 20 values: floor(0.1 * 20) = 2 cut from each end.
        let sorted = (1...20).map(Double.init)
        XCTAssertEqual(Statistics.trimmedMean(ofSorted: sorted, cutFraction: 0.1), 10.5, accuracy: 1e-12)
        // 19 values: floor(1.9) = 1 cut from each end: mean of 2...18 = 10.
        let odd = (1...19).map(Double.init)
        XCTAssertEqual(Statistics.trimmedMean(ofSorted: odd, cutFraction: 0.1), 10, accuracy: 1e-12)
    }

    func testDisplayFormat() {
        XCTAssertEqual(DisplayFormat.fixed(0.8034, decimals: 3), "0.803")
        XCTAssertEqual(DisplayFormat.fixed(1.5, decimals: 3), "1.500")
        XCTAssertEqual(DisplayFormat.fixed(12.0006, decimals: 3), "12.001")
        XCTAssertEqual(DisplayFormat.fixed(-2.25, decimals: 1), "-2.3")
        XCTAssertEqual(DisplayFormat.fixed(7, decimals: 0), "7")
        XCTAssertEqual(DisplayFormat.fixed(.nan, decimals: 3), "nan")
        XCTAssertEqual(DisplayFormat.milliseconds(0.79), "0.790 ms")
        let summary = SummaryStatistics(n: 20, min: 0.803341, median: 0.826943, mean: 0.8399247, std: 0, p90: 0, p99: 0, trimmedMean: 0)
        XCTAssertEqual(summary.displayText, "min 0.803 ms, median 0.827 ms, mean 0.840 ms (n = 20)")
    }
}
