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

/// A clock the test moves by hand; counts its readings. Locked, because the session reads it on
/// the timing thread while the test reads it afterwards.
final class FakeClock: MonotonicClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: UInt64
    private var count = 0

    init(start: UInt64 = 1_000_000) {
        current = start
    }

    var identifier: String { Harness.clockIdentifier }

    var now: UInt64 {
        get { lock.lock(); defer { lock.unlock() }; return current }
        set { lock.lock(); current = newValue; lock.unlock() }
    }

    var readings: Int {
        lock.lock(); defer { lock.unlock() }; return count
    }

    func nowNanoseconds() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        count += 1
        return current
    }

    func advance(milliseconds: Double) {
        lock.lock(); defer { lock.unlock() }
        current += UInt64((milliseconds * 1_000_000).rounded())
    }
}

/// A thread-safe list the test's `@Sendable` callbacks append to.
final class Recorder<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []

    func append(_ item: Element) {
        lock.lock(); items.append(item); lock.unlock()
    }

    var all: [Element] {
        lock.lock(); defer { lock.unlock() }; return items
    }
}

/// Output captured in memory: marked lines, log lines, attachments.
final class CapturedOutput: HarnessOutput, @unchecked Sendable {
    private let lock = NSLock()
    private var outputs: [String] = []
    private var logs: [String] = []
    private var attached: [(name: String, data: Data)] = []

    func output(_ line: String) { lock.lock(); outputs.append(line); lock.unlock() }
    func log(_ line: String) { lock.lock(); logs.append(line); lock.unlock() }
    func attach(name: String, data: Data) { lock.lock(); attached.append((name, data)); lock.unlock() }

    var outputLines: [String] { lock.lock(); defer { lock.unlock() }; return outputs }
    var logLines: [String] { lock.lock(); defer { lock.unlock() }; return logs }
    var attachments: [(name: String, data: Data)] { lock.lock(); defer { lock.unlock() }; return attached }
    var markedLines: [String] { outputLines.filter { $0.hasPrefix(Harness.reportMarker + " ") } }
}

/// An error with a fixed text.
struct FakeError: Error, CustomStringConvertible {
    let description: String
}

/// A backend that loads and "runs" models by moving a ``FakeClock``: each model behaves as its
/// ``Behaviour`` says (load time, inputs, first-run and per-run latency, failures).
final class FakeBackend: BenchmarkBackend, @unchecked Sendable {
    struct Behaviour: Sendable {
        var compileError: String?
        var loadError: String?
        var loadMs = 10.0
        var features = [InputFeature(name: "input", kind: .multiArray(.init(shape: [1, 3, 8, 8], dataTypeRawValue: 0x10020)))]
        var featuresError: String?
        var inputError: String?
        var firstRunMs = 5.0
        /// Latency of prediction number `i` (0: the first run), by default `runMs`.
        var latencies: [Int: Double] = [:]
        var runMs = 1.0
        /// Prediction number (0: the first run) that throws.
        var failAtPrediction: Int?
    }

    struct Model {
        let name: String
        var predictions = 0
    }

    final class Input {
        let plan: [InputPlan]
        var predictions = 0
        init(plan: [InputPlan]) { self.plan = plan }
    }

    let clock: FakeClock
    private let behaviours: [String: Behaviour]
    private let lock = NSLock()
    private var log: [String] = []
    private var threads: [String] = []
    private var removed: [URL] = []

    init(clock: FakeClock, behaviours: [String: Behaviour] = [:]) {
        self.clock = clock
        self.behaviours = behaviours
    }

    private func behaviour(_ name: String) -> Behaviour { behaviours[name] ?? Behaviour() }

    private func note(_ event: String) {
        lock.lock()
        log.append(event)
        threads.append(Thread.current.name ?? "")
        lock.unlock()
    }

    /// Every call, in order: `compile a`, `load a`, `features a`, `input a`, `predict a`.
    var events: [String] { lock.lock(); defer { lock.unlock() }; return log }
    /// The thread name of each event.
    var threadNames: [String] { lock.lock(); defer { lock.unlock() }; return threads }
    /// Temporary compiled models removed.
    var discarded: [URL] { lock.lock(); defer { lock.unlock() }; return removed }

    func compile(_ location: ModelLocation) async throws -> CompiledModel {
        note("compile \(location.name)")
        if let message = behaviour(location.name).compileError { throw FakeError(description: message) }
        if location.format == .compiled { return .asIs(location) }
        let url = location.url.deletingPathExtension().appendingPathExtension("mlmodelc")
        return CompiledModel(location: location, url: url, isTemporary: true)
    }

    func load(_ compiled: CompiledModel, computeUnits: ComputeUnits) throws -> Model {
        note("load \(compiled.location.name) \(computeUnits.rawValue)")
        let behaviour = behaviour(compiled.location.name)
        clock.advance(milliseconds: behaviour.loadMs)
        if let message = behaviour.loadError { throw FakeError(description: message) }
        return Model(name: compiled.location.name)
    }

    func inputFeatures(of model: Model) throws -> [InputFeature] {
        note("features \(model.name)")
        let behaviour = behaviour(model.name)
        if let message = behaviour.featuresError { throw FakeError(description: message) }
        return behaviour.features
    }

    func makeInput(_ plan: [InputPlan], for model: Model) throws -> Input {
        note("input \(model.name)")
        clock.advance(milliseconds: 1000)  // never timed
        if let message = behaviour(model.name).inputError { throw FakeError(description: message) }
        return Input(plan: plan)
    }

    func predict(_ model: Model, _ input: Input) throws {
        note("predict \(model.name)")
        let behaviour = behaviour(model.name)
        let number = input.predictions
        input.predictions += 1
        if behaviour.failAtPrediction == number { throw FakeError(description: "prediction \(number) failed") }
        let latency = behaviour.latencies[number] ?? (number == 0 ? behaviour.firstRunMs : behaviour.runMs)
        clock.advance(milliseconds: latency)
    }

    func describe(_ error: Error) -> String {
        "fake: \(ErrorText.describe(error))"
    }

    func discard(_ compiled: CompiledModel) {
        guard compiled.isTemporary else { return }
        lock.lock(); removed.append(compiled.url); lock.unlock()
    }
}

/// A fixed device (so that reports are reproducible).
let fakeDevice = DeviceInfo(
    modelIdentifier: "iPhone13,2", osName: "iOS", osVersion: "17.5.1", thermalState: .nominal,
    lowPowerMode: false, processorCount: 6, physicalMemoryBytes: 4_000_000_000)

/// A temporary folder with empty model "files" (folders for .mlmodelc and .mlpackage).
func makeModelFolder(_ names: [String], file: StaticString = #filePath) throws -> URL {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-models-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for name in names {
        let url = directory.appendingPathComponent(name)
        if name.hasSuffix(".mlmodel") || name.hasSuffix(".json") || name.hasSuffix(".txt") {
            try Data("x".utf8).write(to: url)
        } else {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
    }
    return directory
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
