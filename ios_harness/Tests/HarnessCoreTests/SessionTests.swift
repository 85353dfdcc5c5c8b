import Foundation
@testable import HarnessCore
import XCTest

/// The session loop driven by a fake backend: selection, compile, load, input, protocol,
/// failures, the timing thread, device conditions.
final class SessionTests: XCTestCase {
    private func session(
        _ backend: FakeBackend,
        names: [String],
        configuration: BenchmarkConfiguration = BenchmarkConfiguration(runs: 5),
        conditions: @escaping @Sendable () -> DeviceConditions = { DeviceConditions(thermalState: .nominal, lowPowerMode: false) }
    ) -> BenchmarkSession<FakeBackend> {
        let models = names.compactMap { ModelLocation(url: URL(fileURLWithPath: "/models/\($0)")) }
        return BenchmarkSession(
            backend: backend, configuration: configuration, configurationSource: .defaults, models: models,
            device: fakeDevice, created: Date(timeIntervalSince1970: 1_795_867_200), clock: backend.clock,
            conditions: conditions)
    }

    func testEveryModelRunsWithThePaperProtocol() async throws {
        let clock = FakeClock()
        let backend = FakeBackend(clock: clock, behaviours: ["a": .init(loadMs: 40, firstRunMs: 7, latencies: [1: 2, 2: 1, 3: 3, 4: 1.5, 5: 1])])
        let seen = Recorder<String>()
        let report = await session(backend, names: ["b.mlmodelc", "a.mlmodelc"]).run { result, soFar in
            seen.append("\(result.model) \(soFar.results.count)")
        }
        XCTAssertEqual(seen.all, ["a 1", "b 2"])
        XCTAssertEqual(report.results.map(\.model), ["a", "b"])
        let a = report.results[0]
        XCTAssertEqual(a.status, .ok)
        XCTAssertEqual(a.loadMs, 40)
        XCTAssertEqual(a.firstRunMs, 7)
        XCTAssertEqual(a.samplesMs, [2, 1, 3, 1.5, 1])
        XCTAssertEqual(a.warmup, 0)
        XCTAssertEqual(a.runsBeforeTiming, 1)
        XCTAssertEqual(a.inputs, [InputDescription(name: "input", kind: .multiArray, shape: [1, 3, 8, 8], dataType: "float32")])
        XCTAssertEqual(a.conditionsBefore, DeviceConditions(thermalState: .nominal, lowPowerMode: false))
        XCTAssertEqual(a.conditionsAfter, DeviceConditions(thermalState: .nominal, lowPowerMode: false))
        XCTAssertEqual(report.validationProblems(), [])
        // One first run and five timed runs: six predictions per model, nothing else.
        XCTAssertEqual(backend.events.filter { $0 == "predict a" }.count, 6)
        XCTAssertEqual(backend.events.prefix(4), ["compile a", "load a all", "features a", "input a"])
    }

    func testEverythingButCompileRunsOnTheTimingThread() async throws {
        let backend = FakeBackend(clock: FakeClock())
        _ = await session(backend, names: ["a.mlmodelc"]).run()
        for (event, thread) in zip(backend.events, backend.threadNames) where !event.hasPrefix("compile") {
            XCTAssertEqual(thread, TimingThread.name, event)
        }
        XCTAssertNotEqual(backend.threadNames.first, TimingThread.name)
    }

    func testTimingThreadIsDedicatedAndHighPriority() async {
        let facts = await TimingThread.run { () -> [String] in
            [Thread.current.name ?? "", "\(Thread.isMainThread)", "\(Thread.current.qualityOfService == .userInteractive)"]
        }
        XCTAssertEqual(facts, [TimingThread.name, "false", "true"])
    }

    func testAModelThatDoesNotLoadIsDataAndTheNextOneRuns() async throws {
        let backend = FakeBackend(clock: FakeClock(), behaviours: ["a": .init(loadError: "corrupt weights")])
        let report = await session(backend, names: ["a.mlmodelc", "b.mlmodelc"]).run()
        XCTAssertEqual(report.results.map(\.status), [.error, .ok])
        XCTAssertEqual(report.results[0].errorMessage, "load failed: fake: corrupt weights")
        XCTAssertNil(report.results[0].conditionsBefore)
        XCTAssertEqual(report.validationProblems(), [])
    }

    func testAPredictionThatThrowsInTheTimedRuns() async throws {
        // Prediction 0 is the first run; 3 is the third timed run.
        let backend = FakeBackend(clock: FakeClock(), behaviours: ["a": .init(failAtPrediction: 3)])
        let result = await session(backend, names: ["a.mlmodelc"]).run().results[0]
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(result.errorMessage, "timed run 3 of 5 failed: fake: prediction 3 failed")
        XCTAssertNotNil(result.firstRunMs)
        XCTAssertNotNil(result.conditionsBefore)
        XCTAssertNil(result.conditionsAfter)
        XCTAssertEqual(result.samplesMs, [])
    }

    func testAFirstRunThatThrows() async throws {
        let backend = FakeBackend(clock: FakeClock(), behaviours: ["a": .init(failAtPrediction: 0)])
        let result = await session(backend, names: ["a.mlmodelc"]).run().results[0]
        XCTAssertEqual(result.errorMessage, "first run failed: fake: prediction 0 failed")
        XCTAssertNil(result.firstRunMs)
    }

    func testWarmupFailureAndWarmupIsUntimed() async throws {
        let configuration = BenchmarkConfiguration(warmup: 2, runs: 3)
        let failing = FakeBackend(clock: FakeClock(), behaviours: ["a": .init(failAtPrediction: 2)])
        let failed = await session(failing, names: ["a.mlmodelc"], configuration: configuration).run().results[0]
        XCTAssertEqual(failed.errorMessage, "warmup run 2 of 2 failed: fake: prediction 2 failed")

        let slowWarmup = FakeBackend(clock: FakeClock(), behaviours: ["a": .init(latencies: [1: 500, 2: 500])])
        let ok = await session(slowWarmup, names: ["a.mlmodelc"], configuration: configuration).run().results[0]
        XCTAssertEqual(ok.samplesMs, [1, 1, 1])
        XCTAssertEqual(ok.runsBeforeTiming, 3)
        XCTAssertEqual(ok.warmup, 2)
    }

    func testAModelSlowOnItsFirstRunKeepsItOutOfTheSamples() async throws {
        let backend = FakeBackend(clock: FakeClock(), behaviours: ["a": .init(firstRunMs: 2500, runMs: 0.8)])
        let result = await session(backend, names: ["a.mlmodelc"]).run().results[0]
        XCTAssertEqual(result.firstRunMs, 2500)
        XCTAssertEqual(result.samplesMs, Array(repeating: 0.8, count: 5))
        XCTAssertEqual(result.summary?.min, 0.8)
    }

    func testInputFailures() async throws {
        let backend = FakeBackend(clock: FakeClock(), behaviours: [
            "a": .init(featuresError: "no description"),
            "b": .init(features: [InputFeature(name: "text", kind: .other(typeName: "string"))]),
            "c": .init(inputError: "out of memory"),
        ])
        let results = await session(backend, names: ["a.mlmodelc", "b.mlmodelc", "c.mlmodelc"]).run().results
        XCTAssertEqual(results.map(\.errorMessage), [
            "input preparation failed: fake: no description",
            "input preparation failed: fake: input text: cannot synthesize a value of type string",
            "input preparation failed: fake: out of memory",
        ])
        XCTAssertTrue(results.allSatisfy { $0.loadMs != nil })
    }

    func testCompileFailureAndTemporaryCopiesAreDiscarded() async throws {
        let backend = FakeBackend(clock: FakeClock(), behaviours: ["bad": .init(compileError: "not a model")])
        let report = await session(backend, names: ["bad.mlpackage", "good.mlpackage", "plain.mlmodelc"]).run()
        XCTAssertEqual(report.results.map(\.status), [.error, .ok, .ok])
        XCTAssertEqual(report.results[0].errorMessage, "compile failed: fake: not a model")
        XCTAssertEqual(report.results[1].file, "good.mlpackage")
        XCTAssertEqual(backend.discarded.map(\.lastPathComponent), ["good.mlmodelc"])
    }

    func testSelectionOnlyAndNotFound() async throws {
        let backend = FakeBackend(clock: FakeClock())
        let configured = session(backend, names: ["a.mlmodelc", "b.mlmodelc"],
                                 configuration: BenchmarkConfiguration(runs: 2, models: ["b", "zz.mlmodelc"]))
        let report = await configured.run()
        XCTAssertEqual(report.results.map(\.model), ["b", "zz"])
        XCTAssertEqual(report.results[1].errorMessage, "not found: no model named 'zz' (available: a, b)")

        let one = await configured.run(only: ["a"])
        XCTAssertEqual(one.results.map(\.model), ["a"])
        XCTAssertEqual(one.config.models, ["a"])
        XCTAssertEqual(configured.report(for: one.results[0]).results.count, 1)
    }

    func testCancellation() async throws {
        let backend = FakeBackend(clock: FakeClock())
        let flag = CancellationFlag()
        let counter = Recorder<Int>()
        let hooks = BenchmarkHooks(
            progress: { progress in
                if progress.stage == .timing {
                    counter.append(progress.completed)
                    if progress.completed == 2 { flag.cancel() }
                }
            },
            isCancelled: { flag.isCancelled })
        let report = await session(backend, names: ["a.mlmodelc", "b.mlmodelc"]).run(hooks: hooks)
        XCTAssertEqual(report.results[0].errorMessage, "cancelled after 2 timed run(s)")
        XCTAssertEqual(report.results[1].errorMessage, "cancelled before loading")
        XCTAssertEqual(counter.all, [1, 2])
        XCTAssertFalse(backend.events.contains("load b all"))
    }

    func testConditionsAreReadBeforeAndAfterTheTimedRuns() async throws {
        let readings = Recorder<Int>()
        let states: [ThermalState] = [.nominal, .serious]
        let backend = FakeBackend(clock: FakeClock())
        let conditions: @Sendable () -> DeviceConditions = {
            readings.append(1)
            return DeviceConditions(thermalState: states[min(readings.all.count - 1, 1)], lowPowerMode: true)
        }
        let result = await session(backend, names: ["a.mlmodelc"], conditions: conditions).run().results[0]
        XCTAssertEqual(readings.all.count, 2)
        XCTAssertEqual(result.conditionsBefore?.thermalState, .nominal)
        XCTAssertEqual(result.conditionsAfter?.thermalState, .serious)
        XCTAssertTrue(result.conditionsAfter?.mayThrottle ?? false)
        XCTAssertTrue(DeviceConditions(thermalState: .nominal, lowPowerMode: true).mayThrottle)
        XCTAssertFalse(DeviceConditions(thermalState: .nominal, lowPowerMode: nil).mayThrottle)
        XCTAssertEqual(result.conditionsAfter?.summaryText, "thermal state serious, low power mode on")
    }

    func testBundledSessionReadsTheBundledConfigurationAndModels() throws {
        let resources = try makeModelFolder(["Models/b.mlmodelc", "a.mlmodelc", "Models/a.mlmodelc", "notes.txt"])
        defer { try? FileManager.default.removeItem(at: resources) }
        try Data(#"{"runs": 7}"#.utf8).write(to: resources.appendingPathComponent("run_config.json"))
        let session = try BenchmarkSession.bundled(
            backend: FakeBackend(clock: FakeClock()), resourceURL: resources, environment: [:], device: fakeDevice)
        XCTAssertEqual(session.configuration.runs, 7)
        XCTAssertEqual(session.configurationSource, .bundledFile(name: "run_config.json"))
        XCTAssertEqual(session.models.map(\.name), ["a", "b"])
        XCTAssertEqual(session.models[0].url.deletingLastPathComponent().lastPathComponent, "Models")

        let defaults = try BenchmarkSession.bundled(
            backend: FakeBackend(clock: FakeClock()), resourceURL: nil, environment: [:], device: fakeDevice)
        XCTAssertEqual(defaults.configurationSource, .defaults)
        XCTAssertEqual(defaults.models, [])
        XCTAssertThrowsError(try BenchmarkSession.bundled(
            backend: FakeBackend(clock: FakeClock()), resourceURL: nil,
            environment: ["MOBILEONE_BENCH_CONFIG": #"{"runs": 0}"#], device: fakeDevice))
    }

    func testDefaultBackendBehaviour() async throws {
        struct Minimal: BenchmarkBackend {
            func load(_ compiled: CompiledModel, computeUnits: ComputeUnits) throws -> Int { 1 }
            func inputFeatures(of model: Int) throws -> [InputFeature] { [] }
            func makeInput(_ plan: [InputPlan], for model: Int) throws -> Int { 0 }
            func predict(_ model: Int, _ input: Int) throws {}
        }
        let compiled = try XCTUnwrap(ModelLocation(url: URL(fileURLWithPath: "/m/a.mlmodelc")))
        let package = try XCTUnwrap(ModelLocation(url: URL(fileURLWithPath: "/m/a.mlpackage")))
        let asIs = try await Minimal().compile(compiled)
        XCTAssertEqual(asIs, .asIs(compiled))
        do {
            _ = try await Minimal().compile(package)
            XCTFail("compiled a package")
        } catch {
            XCTAssertEqual(error as? BackendError, .cannotCompile(fileName: "a.mlpackage"))
            XCTAssertEqual(Minimal().describe(error), "this backend cannot compile a.mlpackage; give it a compiled .mlmodelc")
        }
        let temporary = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-tmp-\(UUID().uuidString).mlmodelc")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        Minimal().discard(CompiledModel(location: package, url: temporary, isTemporary: true))
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary.path))

        let real = BenchmarkSession(backend: Minimal(), configuration: BenchmarkConfiguration(runs: 3),
                                    configurationSource: .defaults, models: [compiled])
        let report = await real.run()
        XCTAssertEqual(report.results.map(\.status), [.ok])
        XCTAssertEqual(report.results[0].samplesMs.count, 3)
    }
}
