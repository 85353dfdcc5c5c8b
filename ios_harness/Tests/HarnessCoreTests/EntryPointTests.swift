import Foundation
@testable import HarnessCore
import XCTest

/// The bodies of the headless test and of the macOS runner, with a fake backend.
final class EntryPointTests: XCTestCase {
    private let created = Date(timeIntervalSince1970: 1_795_867_200)

    private func makeSession(_ backend: FakeBackend, _ names: [String], runs: Int = 4) -> BenchmarkSession<FakeBackend> {
        BenchmarkSession(
            backend: backend, configuration: BenchmarkConfiguration(runs: runs), configurationSource: .defaults,
            models: names.compactMap { ModelLocation(url: URL(fileURLWithPath: "/bundle/Models/\($0)")) },
            device: fakeDevice, created: created, clock: backend.clock,
            conditions: { DeviceConditions(thermalState: .fair, lowPowerMode: false) })
    }

    private func temporaryDirectory() -> URL {
        URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("harness-out-\(UUID().uuidString)")
    }

    // MARK: - headless

    func testHeadlessRunPrintsAttachesAndSavesEveryModel() async throws {
        let backend = FakeBackend(clock: FakeClock(), behaviours: ["b": .init(loadError: "bad")])
        let output = CapturedOutput()
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let outcome = await HeadlessRun.run(
            makeSession: { makeSession(backend, ["a.mlmodelc", "b.mlmodelc"]) }, output: output, reportsDirectory: directory)
        guard case let .finished(report) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(report.results.map(\.status), [.ok, .error])

        // One marked line per model, each a complete single-result report; merged, the run.
        XCTAssertEqual(output.markedLines.count, 2)
        let fromLines = try ReportCoding.reports(inLog: output.outputLines.joined(separator: "\n"))
        XCTAssertEqual(try HarnessReport.merging(fromLines), report)

        // One attachment per model as it finished (its compute plan just before it), then the whole report.
        XCTAssertEqual(output.attachments.map(\.name), [
            "mobileone-bench-compute-plan-20261128T120000Z-a.json", "mobileone-bench-20261128T120000Z-a.json",
            "mobileone-bench-compute-plan-20261128T120000Z-b.json", "mobileone-bench-20261128T120000Z-b.json",
            "mobileone-bench-20261128T120000Z.json",
        ])
        let reports = output.attachments.filter { !$0.name.contains("compute-plan") }
        XCTAssertEqual(try ReportCoding.decode(reports[1].data).results.map(\.model), ["b"])
        XCTAssertEqual(try ReportCoding.decode(reports[2].data), report)

        // The report file, replaced as models finish: the last version holds the run.
        let saved = try ReportCoding.decode(Data(contentsOf: directory.appendingPathComponent("mobileone-bench-20261128T120000Z.json")))
        XCTAssertEqual(saved, report)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(), [
            "mobileone-bench-20261128T120000Z.json", "mobileone-bench-compute-plan-20261128T120000Z-a.json",
            "mobileone-bench-compute-plan-20261128T120000Z-b.json",
        ])
        XCTAssertTrue(output.logLines.contains("[mobileone-bench] report written to \(directory.lastPathComponent)/mobileone-bench-20261128T120000Z.json (2 models, 1 failed)"), "\(output.logLines)")
        XCTAssertTrue(output.logLines.contains { $0.hasPrefix("[mobileone-bench] b: error: load failed: fake: bad") })
    }

    func testHeadlessRunFailsWithoutModelsOrWithABadConfiguration() async {
        let output = CapturedOutput()
        let none = await HeadlessRun.run(makeSession: { makeSession(FakeBackend(clock: FakeClock()), []) },
                                         output: output, reportsDirectory: nil)
        XCTAssertEqual(none, .failed(HeadlessRun.noModelsMessage))
        XCTAssertEqual(output.markedLines, [])

        let bad = await HeadlessRun.run(
            makeSession: { () throws -> BenchmarkSession<FakeBackend> in
                throw ConfigurationError.invalidValue(key: "runs", message: "must be >= 1 (got 0)")
            },
            output: output, reportsDirectory: nil)
        XCTAssertEqual(bad, .failed("run configuration: runs must be >= 1 (got 0)"))
    }

    func testHeadlessRunSurvivesAnUnwritableReportsDirectory() async throws {
        let file = temporaryDirectory()
        try Data("not a folder".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = CapturedOutput()
        let outcome = await HeadlessRun.run(makeSession: { makeSession(FakeBackend(clock: FakeClock()), ["a.mlmodelc"]) },
                                            output: output, reportsDirectory: file)
        guard case .finished = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(output.markedLines.count, 1)
        XCTAssertTrue(output.logLines.contains { $0.contains("could not write the report") }, "\(output.logLines)")
    }

    func testAnUnprintableResultIsSaidNotPrinted() {
        var report = makeSampleReport()
        report.results = [report.results[0]]
        report.results[0].samplesMs[0] = .infinity
        let output = CapturedOutput()
        HeadlessRun.emit(report, output: output)
        XCTAssertEqual(output.outputLines, [])
        XCTAssertTrue(output.logLines[0].hasPrefix("[mobileone-bench] mobileone_s0: cannot print the report:"), "\(output.logLines)")
    }

    // MARK: - macOS runner

    func testMacRunnerRunsTheModelsOfAFolderAndWritesTheReport() async throws {
        let folder = try makeModelFolder(["a.mlmodelc", "b.mlpackage", "readme.txt"])
        let out = folder.appendingPathComponent("report.json")
        let config = folder.appendingPathComponent("run_config.json")
        try Data(#"{"runs": 3, "tag": "file"}"#.utf8).write(to: config)
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = FakeBackend(clock: FakeClock())
        let output = CapturedOutput()
        let status = await MacRunner.run(
            arguments: ["--models", folder.path, "--config", config.path, "--runs", "20", "--out", out.path],
            backend: backend, output: output, device: fakeDevice, clock: backend.clock)
        XCTAssertEqual(status, MacRunner.exitOK)
        XCTAssertEqual(output.markedLines.count, 2)
        let report = try ReportCoding.decode(Data(contentsOf: out))
        XCTAssertEqual(report.results.map(\.file), ["a.mlmodelc", "b.mlpackage"])
        XCTAssertEqual(report.config.runs, 20)
        XCTAssertEqual(report.config.tag, "file")
        XCTAssertTrue(output.logLines.contains("[mobileone-bench] a: loading"), "\(output.logLines)")
        XCTAssertTrue(output.logLines.contains("[mobileone-bench] a: 20/20 timed runs"), "\(output.logLines)")
        XCTAssertTrue(output.logLines.contains("[mobileone-bench] report written to \(out.path)"))
    }

    func testMacRunnerExitStatuses() async throws {
        let folder = try makeModelFolder(["a.mlmodelc"])
        let empty = try makeModelFolder(["notes.txt"])
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: empty)
        }
        func run(_ arguments: [String], _ behaviours: [String: FakeBackend.Behaviour] = [:]) async -> (Int32, CapturedOutput) {
            let output = CapturedOutput()
            let backend = FakeBackend(clock: FakeClock(), behaviours: behaviours)
            let status = await MacRunner.run(arguments: arguments, backend: backend, output: output,
                                             device: fakeDevice, clock: backend.clock)
            return (status, output)
        }
        let (failed, failedOutput) = await run(["--models", folder.path, "--runs", "2", "-q"], ["a": .init(loadError: "x")])
        XCTAssertEqual(failed, MacRunner.exitModelFailed)
        XCTAssertEqual(failedOutput.markedLines.count, 1)
        XCTAssertEqual(failedOutput.logLines, [], "--quiet prints no progress")

        let (usage, usageOutput) = await run(["--runs", "2"])
        XCTAssertEqual(usage, MacRunner.exitUsage)
        XCTAssertTrue(usageOutput.logLines[0].hasPrefix("no models given"))
        let (missing, _) = await run(["--models", folder.appendingPathComponent("nope.mlmodelc").path])
        XCTAssertEqual(missing, MacRunner.exitUsage)
        let (noModels, noModelsOutput) = await run(["--models", empty.path])
        XCTAssertEqual(noModels, MacRunner.exitUsage)
        XCTAssertTrue(noModelsOutput.logLines[0].hasPrefix("no .mlmodelc, .mlpackage or .mlmodel found in"))
        let (badConfig, _) = await run(["--models", folder.path, "--config", empty.appendingPathComponent("none.json").path])
        XCTAssertEqual(badConfig, MacRunner.exitUsage)
        let (unwritable, unwritableOutput) = await run(["--models", folder.path, "--runs", "1", "--out", empty.appendingPathComponent("no/such/dir/r.json").path])
        XCTAssertEqual(unwritable, MacRunner.exitOutput)
        XCTAssertTrue(unwritableOutput.logLines.last?.hasPrefix("cannot write") ?? false)

        let (help, helpOutput) = await run(["--help"])
        XCTAssertEqual(help, MacRunner.exitOK)
        XCTAssertEqual(helpOutput.outputLines, [CommandLineOptions.usage])
        let (version, versionOutput) = await run(["--version"])
        XCTAssertEqual(version, MacRunner.exitOK)
        XCTAssertEqual(versionOutput.outputLines, ["mobileone-harness 0.2.0 (report schema mobileone-bench/harness-report v1)"])
    }

    func testMacRunnerProgressLines() {
        func line(_ stage: BenchmarkProgress.Stage, _ completed: Int, _ total: Int = 1000) -> String? {
            MacRunner.progressLine(BenchmarkProgress(model: "m", stage: stage, completed: completed, total: total))
        }
        XCTAssertEqual(line(.loading, 0), "m: loading")
        XCTAssertEqual(line(.timing, 100), "m: 100/1000 timed runs")
        XCTAssertNil(line(.timing, 101))
        XCTAssertNil(line(.firstRun, 0))
        XCTAssertEqual(line(.timing, 1, 3), "m: 1/3 timed runs")
    }

    // MARK: - output

    func testEachLineIsOneWriteCall() throws {
        var descriptors: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&descriptors), 0)
        defer { close(descriptors[0]) }
        // A marked line of a 1000-sample report is about 20 kB; a pipe holds 64 kB on Linux.
        let line = "MOBILEONE_BENCH_REPORT {" + String(repeating: "1.234567,", count: 2_000) + "}"
        XCTAssertEqual(FileDescriptorOutput.writeLine(line, to: descriptors[1]), 1)
        let output = FileDescriptorOutput(outputDescriptor: descriptors[1], logDescriptor: descriptors[1])
        output.output("second")
        output.progress("third")
        output.attach(name: "ignored.json", data: Data())
        close(descriptors[1])
        let read = FileHandle(fileDescriptor: descriptors[0]).readDataToEndOfFile()
        XCTAssertEqual(String(decoding: read, as: UTF8.self), line + "\nsecond\n[mobileone-bench] third\n")
        XCTAssertNil(FileDescriptorOutput.writeLine("closed", to: descriptors[1]))
        XCTAssertEqual(FileDescriptorOutput.standardOutputOnly.logDescriptor, 1)
    }

    // MARK: - the app's board

    func testRunBoard() throws {
        let locations = ["a.mlmodelc", "b.mlmodelc"].compactMap { ModelLocation(url: URL(fileURLWithPath: "/m/\($0)")) }
        var board = RunBoard(models: locations)
        XCTAssertNil(board.statusMessage)
        XCTAssertEqual(board.rows.map(\.headline), ["a.mlmodelc", "b.mlmodelc"])
        XCTAssertNil(board.rows[0].detail)
        XCTAssertTrue(RunBoard(models: []).statusMessage?.hasPrefix("No models bundled.") ?? false)

        var ok = makeSampleReport().results[0]
        ok.model = "a"
        ok.conditionsAfter = DeviceConditions(thermalState: .serious, lowPowerMode: false)
        board.apply(ok)
        XCTAssertEqual(board.rows[0].headline, "min 0.790 ms  median 0.800 ms  mean 0.800 ms")
        XCTAssertEqual(board.rows[0].detail, "n = 3, compute units cpu_and_ne, thermal state serious, low power mode off")
        board.apply(ModelResult.notFound(requested: "zz", available: ["a", "b"], configuration: BenchmarkConfiguration()))
        XCTAssertEqual(board.rows.map(\.name), ["a", "b", "zz"])
        XCTAssertEqual(board.rows[2].headline, "not found: no model named 'zz' (available: a, b)")
        XCTAssertEqual(board.rows[2].id, "zz")

        XCTAssertEqual(RunBoard.savedMessage(for: makeSampleReport(), fileName: "r.json"), "Saved reports/r.json (2 models, 1 failed).")
        XCTAssertTrue(RunBoard.shouldPublish(BenchmarkProgress(model: "a", stage: .loading, completed: 0, total: 1000)))
        XCTAssertTrue(RunBoard.shouldPublish(BenchmarkProgress(model: "a", stage: .timing, completed: 20, total: 1000)))
        XCTAssertFalse(RunBoard.shouldPublish(BenchmarkProgress(model: "a", stage: .timing, completed: 21, total: 1000)))
        XCTAssertEqual(BenchmarkProgress(model: "a", stage: .timing, completed: 250, total: 1000).fraction, 0.25)
        XCTAssertEqual(BenchmarkProgress(model: "a", stage: .timing, completed: 0, total: 0).fraction, 0)
    }
}
