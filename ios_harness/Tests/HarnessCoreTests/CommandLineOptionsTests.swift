@testable import HarnessCore
import XCTest

final class CommandLineOptionsTests: XCTestCase {
    func testAllOptions() throws {
        let options = try CommandLineOptions.parse([
            "--models", "Models/", "extra/mobileone_s1.mlpackage",
            "--config", "run_config.json",
            "--warmup", "3",
            "--runs=250",
            "--compute-units", "cpu_and_ne",
            "--tag", "mac",
            "--out", "report.json",
            "--quiet",
        ])
        XCTAssertEqual(options.modelPaths, ["Models/", "extra/mobileone_s1.mlpackage"])
        XCTAssertEqual(options.configPath, "run_config.json")
        XCTAssertEqual(options.warmup, 3)
        XCTAssertEqual(options.runs, 250)
        XCTAssertEqual(options.computeUnits, .cpuAndNeuralEngine)
        XCTAssertEqual(options.tag, "mac")
        XCTAssertEqual(options.outputPath, "report.json")
        XCTAssertTrue(options.quiet)
        XCTAssertFalse(options.showHelp)
    }

    func testModelsCanRepeatAndUseEquals() throws {
        let options = try CommandLineOptions.parse(["--models=a.mlmodelc", "--models", "b.mlmodelc", "c.mlmodelc"])
        XCTAssertEqual(options.modelPaths, ["a.mlmodelc", "b.mlmodelc", "c.mlmodelc"])
    }

    func testModelPathsEndAtShortOptionsToo() throws {
        let options = try CommandLineOptions.parse(["--models", "a.mlmodelc", "b.mlmodelc", "-q", "--runs", "3"])
        XCTAssertEqual(options.modelPaths, ["a.mlmodelc", "b.mlmodelc"])
        XCTAssertTrue(options.quiet)
        XCTAssertEqual(try CommandLineOptions.parse(["--models", "m", "-h"]).showHelp, true)
        XCTAssertEqual(try CommandLineOptions.parse(["--models=-odd.mlmodelc"]).modelPaths, ["-odd.mlmodelc"])
        XCTAssertThrowsError(try CommandLineOptions.parse(["--models", "-x"])) { error in
            XCTAssertEqual(error as? CommandLineError, .missingValue(option: "--models"))
        }
        XCTAssertEqual(CommandLineError.unknownOption("-x").errorDescription, "unknown option -x (see --help)")
    }

    func testHelpAndVersionNeedNoModels() throws {
        XCTAssertTrue(try CommandLineOptions.parse(["--help"]).showHelp)
        XCTAssertTrue(try CommandLineOptions.parse(["-h"]).showHelp)
        XCTAssertTrue(try CommandLineOptions.parse(["--version"]).showVersion)
        XCTAssertTrue(CommandLineOptions.usage.contains("--compute-units"))
    }

    func testErrors() {
        let cases: [([String], CommandLineError)] = [
            ([], .missingModels),
            (["--runs", "5"], .missingModels),
            (["--models"], .missingValue(option: "--models")),
            (["--models", "--runs", "5"], .missingValue(option: "--models")),
            (["--models", "m", "--runs"], .missingValue(option: "--runs")),
            (["--models", "m", "--runs", "many"], .invalidValue(option: "--runs", value: "many", reason: "expected an integer")),
            (["--models", "m", "--compute-units", "gpu"],
             .invalidValue(option: "--compute-units", value: "gpu", reason: "expected one of all, cpu_only, cpu_and_gpu, cpu_and_ne")),
            (["--models", "m", "--fast"], .unknownOption("--fast")),
            (["stray", "--models", "m"], .unexpectedArgument("stray")),
            (["--models", "m", "--quiet=yes"], .invalidValue(option: "--quiet", value: "yes", reason: "takes no value")),
        ]
        for (arguments, expected) in cases {
            XCTAssertThrowsError(try CommandLineOptions.parse(arguments), "\(arguments)") { error in
                XCTAssertEqual(error as? CommandLineError, expected, "\(arguments)")
            }
        }
    }

    func testNegativeNumbersAreValuesNotOptions() throws {
        let options = try CommandLineOptions.parse(["--models", "m", "--warmup", "-1"])
        XCTAssertEqual(options.warmup, -1)
        XCTAssertThrowsError(try options.configuration(overriding: BenchmarkConfiguration()))
    }

    func testOverridesApplyOnTopOfTheConfigurationFile() throws {
        let base = BenchmarkConfiguration(warmup: 1, runs: 1000, computeUnits: .all, models: ["mobileone_s0"], tag: "file")
        let options = try CommandLineOptions.parse(["--models", "m", "--runs", "10", "--compute-units", "cpu_only"])
        let configuration = try options.configuration(overriding: base)
        XCTAssertEqual(configuration, BenchmarkConfiguration(warmup: 1, runs: 10, computeUnits: .cpuOnly, models: ["mobileone_s0"], tag: "file"))

        let invalid = try CommandLineOptions.parse(["--models", "m", "--runs", "0"])
        XCTAssertThrowsError(try invalid.configuration(overriding: base)) { error in
            XCTAssertEqual(error as? ConfigurationError, .invalidValue(key: "runs", message: "must be >= 1 (got 0)"))
        }
    }
}
