import Foundation
@testable import HarnessCore
import XCTest

final class ConfigurationTests: XCTestCase {
    private func parse(_ json: String) throws -> BenchmarkConfiguration {
        try BenchmarkConfiguration.parse(Data(json.utf8))
    }

    /// Asserts that `json` is rejected with an error about `key` whose message mentions `key`.
    private func assertRejected(
        _ json: String,
        key: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try parse(json), file: file, line: line) { error in
            guard let configurationError = error as? ConfigurationError else {
                return XCTFail("expected ConfigurationError, got \(error)", file: file, line: line)
            }
            switch configurationError {
            case let .invalidValue(badKey, _), let .wrongType(badKey, _):
                XCTAssertEqual(badKey, key, file: file, line: line)
            default:
                XCTFail("expected an error about \(key), got \(configurationError)", file: file, line: line)
            }
            XCTAssertTrue(configurationError.description.contains(key), "\(configurationError)", file: file, line: line)
        }
    }

    func testFullConfiguration() throws {
        let configuration = try parse("""
        {"warmup": 5, "runs": 200, "compute_units": "cpu_and_gpu", "models": ["mobileone_s0", "mobileone_s1.mlmodelc"], "tag": "table9"}
        """)
        XCTAssertEqual(configuration, BenchmarkConfiguration(
            warmup: 5, runs: 200, computeUnits: .cpuAndGPU, models: ["mobileone_s0", "mobileone_s1.mlmodelc"], tag: "table9"))
    }

    func testEmptyObjectGivesDefaults() throws {
        let configuration = try parse("{}")
        // The paper's protocol: one (first) run, then 1000 timed runs; no extra warmup.
        XCTAssertEqual(configuration.warmup, 0)
        XCTAssertEqual(configuration.runs, 1000)
        XCTAssertEqual(configuration.computeUnits, .all)
        XCTAssertEqual(configuration.models, [])
        XCTAssertNil(configuration.tag)
        XCTAssertEqual(configuration, BenchmarkConfiguration())
    }

    func testNullMeansAbsent() throws {
        let configuration = try parse(#"{"tag": null, "models": null, "runs": null}"#)
        XCTAssertEqual(configuration, BenchmarkConfiguration())
    }

    func testEveryComputeUnitsSpelling() throws {
        for units in ComputeUnits.allCases {
            XCTAssertEqual(try parse(#"{"compute_units": "\#(units.rawValue)"}"#).computeUnits, units)
        }
        XCTAssertEqual(ComputeUnits.cpuAndNeuralEngine.rawValue, "cpu_and_ne")
        XCTAssertEqual(ComputeUnits.acceptedValues, "all, cpu_only, cpu_and_gpu, cpu_and_ne")
    }

    func testSharedFixtureParses() throws {
        let configuration = try BenchmarkConfiguration.load(from: Fixtures.url("run_config.json"))
        XCTAssertEqual(configuration.runs, 1000)
        XCTAssertEqual(configuration.warmup, 1)
        XCTAssertEqual(configuration.computeUnits, .all)
        XCTAssertEqual(configuration.models, ["mobileone_s0", "mobileone_s1.mlmodelc"])
        XCTAssertEqual(configuration.tag, "iphone12-table9")
    }

    func testRunsMustBeAtLeastOne() {
        assertRejected(#"{"runs": 0}"#, key: "runs")
        assertRejected(#"{"runs": -5}"#, key: "runs")
    }

    func testRunsHasAnUpperBound() {
        assertRejected(#"{"runs": 1000001}"#, key: "runs")
    }

    func testWarmupMustNotBeNegative() {
        assertRejected(#"{"warmup": -1}"#, key: "warmup")
        assertRejected(#"{"warmup": 100001}"#, key: "warmup")
    }

    func testWrongTypes() {
        assertRejected(#"{"runs": "100"}"#, key: "runs")
        assertRejected(#"{"runs": 1.5}"#, key: "runs")
        assertRejected(#"{"warmup": true}"#, key: "warmup")
        assertRejected(#"{"models": "mobileone_s0"}"#, key: "models")
        assertRejected(#"{"models": [1, 2]}"#, key: "models")
        assertRejected(#"{"tag": 7}"#, key: "tag")
        assertRejected(#"{"compute_units": 3}"#, key: "compute_units")
    }

    func testUnknownComputeUnits() {
        assertRejected(#"{"compute_units": "gpu"}"#, key: "compute_units")
        XCTAssertThrowsError(try parse(#"{"compute_units": "gpu"}"#)) { error in
            XCTAssertTrue(String(describing: error).contains("cpu_and_ne"), "lists the accepted values: \(error)")
        }
    }

    func testModelEntriesMustBeNamesNotPaths() {
        assertRejected(#"{"models": ["Models/mobileone_s0.mlmodelc"]}"#, key: "models")
        assertRejected(#"{"models": [""]}"#, key: "models")
    }

    func testTagLength() throws {
        let longTag = String(repeating: "x", count: 201)
        assertRejected(#"{"tag": "\#(longTag)"}"#, key: "tag")
        let longestTag = String(repeating: "y", count: 200)
        XCTAssertEqual(try parse(#"{"tag": "\#(longestTag)"}"#).tag?.count, 200)
    }

    func testUnknownKeysAreRejected() {
        XCTAssertThrowsError(try parse(#"{"run": 100, "warmups": 2}"#)) { error in
            XCTAssertEqual(error as? ConfigurationError, .unknownKeys(["run", "warmups"]))
            XCTAssertTrue(String(describing: error).contains("allowed keys"))
        }
    }

    func testMalformedJSON() {
        for text in ["", "not json", "[1, 2]", "42", "{\"runs\": }"] {
            XCTAssertThrowsError(try parse(text), "input: \(text)") { error in
                guard case .malformedJSON = error as? ConfigurationError else {
                    return XCTFail("expected malformedJSON for \(text), got \(error)")
                }
            }
        }
    }

    func testUnreadableFile() {
        let missing = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("no-such-run-config-\(UUID().uuidString).json")
        XCTAssertThrowsError(try BenchmarkConfiguration.load(from: missing)) { error in
            guard case .unreadable(let path, _) = error as? ConfigurationError else {
                return XCTFail("expected unreadable, got \(error)")
            }
            XCTAssertEqual(path, missing.path)
        }
    }

    func testEncodingWritesEveryKeyIncludingNullTag() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(BenchmarkConfiguration()), as: UTF8.self)
        XCTAssertEqual(json, #"{"compute_units":"all","models":[],"runs":1000,"tag":null,"warmup":0}"#)
    }

    func testValidateCatchesValuesSetInCode() {
        var configuration = BenchmarkConfiguration()
        configuration.runs = 0
        XCTAssertThrowsError(try configuration.validate())
    }

    func testResolveOrder() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bundled = directory.appendingPathComponent("run_config.json")
        try Data(#"{"runs": 7}"#.utf8).write(to: bundled)
        let other = directory.appendingPathComponent("other.json")
        try Data(#"{"runs": 9}"#.utf8).write(to: other)

        let fromDefaults = try BenchmarkConfiguration.resolve(environment: [:], bundledConfigURL: nil)
        XCTAssertEqual(fromDefaults.configuration, BenchmarkConfiguration())
        XCTAssertEqual(fromDefaults.source, .defaults)

        let fromBundle = try BenchmarkConfiguration.resolve(environment: [:], bundledConfigURL: bundled)
        XCTAssertEqual(fromBundle.configuration.runs, 7)
        XCTAssertEqual(fromBundle.source, .bundledFile(name: "run_config.json"))

        let fromPath = try BenchmarkConfiguration.resolve(
            environment: ["MOBILEONE_BENCH_CONFIG": other.path], bundledConfigURL: bundled)
        XCTAssertEqual(fromPath.configuration.runs, 9)
        XCTAssertEqual(fromPath.source, .environmentFile(path: other.path))

        let inline = try BenchmarkConfiguration.resolve(
            environment: ["MOBILEONE_BENCH_CONFIG": #" {"runs": 11, "compute_units": "cpu_only"} "#], bundledConfigURL: bundled)
        XCTAssertEqual(inline.configuration.runs, 11)
        XCTAssertEqual(inline.configuration.computeUnits, .cpuOnly)
        XCTAssertEqual(inline.source, .environmentInline)

        let blank = try BenchmarkConfiguration.resolve(environment: ["MOBILEONE_BENCH_CONFIG": "  "], bundledConfigURL: bundled)
        XCTAssertEqual(blank.source, .bundledFile(name: "run_config.json"))

        // A bad configuration is an error, never a silent fallback.
        XCTAssertThrowsError(try BenchmarkConfiguration.resolve(
            environment: ["MOBILEONE_BENCH_CONFIG": #"{"runs": 0}"#], bundledConfigURL: bundled))
        XCTAssertThrowsError(try BenchmarkConfiguration.resolve(
            environment: ["MOBILEONE_BENCH_CONFIG": directory.appendingPathComponent("missing.json").path],
            bundledConfigURL: bundled))
    }
}
