import Foundation
@testable import HarnessCore
import XCTest

/// Locates the repository's shared fixtures (`tests/fixtures/harness/`) and schema
/// (`mobileone_bench/data/harness_report.schema.json`) by walking up from this file.
enum Fixtures {
    struct NotFound: Error, CustomStringConvertible {
        let description: String
    }

    /// The repository root: the first ancestor of this file that has `tests/fixtures/harness`.
    static func repositoryRoot(file: StaticString = #filePath) throws -> URL {
        var directory = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        for _ in 0..<64 {
            let marker = directory.appendingPathComponent("tests/fixtures/harness/report_ok.json")
            if FileManager.default.fileExists(atPath: marker.path) {
                return directory
            }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path {
                break
            }
            directory = parent
        }
        throw NotFound(description: "no tests/fixtures/harness above \(file)")
    }

    static func url(_ name: String) throws -> URL {
        try repositoryRoot().appendingPathComponent("tests/fixtures/harness").appendingPathComponent(name)
    }

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: url(name))
    }

    static func schemaData() throws -> Data {
        try Data(contentsOf: repositoryRoot().appendingPathComponent("mobileone_bench/data/harness_report.schema.json"))
    }
}

/// Any JSON value, compared structurally (numbers as Double), to check that a decode/encode
/// round trip loses nothing.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }
}

/// A clock the test moves by hand; counts its readings.
final class FakeClock: MonotonicClock {
    var now: UInt64
    private(set) var readings = 0

    init(start: UInt64 = 1_000_000) {
        now = start
    }

    var identifier: String { Harness.clockIdentifier }

    func nowNanoseconds() -> UInt64 {
        readings += 1
        return now
    }

    func advance(milliseconds: Double) {
        now += UInt64((milliseconds * 1_000_000).rounded())
    }
}

/// A small valid report built in code.
func makeSampleReport(created: Date = Date(timeIntervalSince1970: 1_795_867_200)) -> HarnessReport {
    let configuration = BenchmarkConfiguration(warmup: 1, runs: 3, computeUnits: .cpuAndNeuralEngine, models: [], tag: nil)
    let samples = [0.81, 0.79, 0.8]
    let ok = ModelResult(
        model: "mobileone_s0",
        file: "mobileone_s0.mlmodelc",
        status: .ok,
        errorMessage: nil,
        computeUnits: .cpuAndNeuralEngine,
        inputs: [InputDescription(name: "input", kind: .multiArray, shape: [1, 3, 224, 224], dataType: "float32")],
        loadMs: 120.5,
        firstRunMs: 5.25,
        warmup: 1,
        runs: 3,
        clock: Harness.clockIdentifier,
        samplesMs: samples,
        summary: Statistics.summarize(samples)
    )
    let failed = ModelResult.failure(
        model: "broken",
        file: "broken.mlmodelc",
        configuration: configuration,
        message: "load failed: \"quoted\"\nsecond line / slash"
    )
    let device = DeviceInfo(
        modelIdentifier: "iPhone13,2",
        osName: "iOS",
        osVersion: "17.5.1",
        thermalState: .nominal,
        lowPowerMode: nil,
        processorCount: 6,
        physicalMemoryBytes: 3_869_868_032
    )
    return HarnessReport(created: created, device: device, config: configuration, results: [ok, failed])
}
