#if canImport(CoreML)
import Foundation
import HarnessCore
import HarnessCoreML

/// The `mobileone-harness` program: options, configuration, discovery, benchmark, output.
enum MacCommandLineRunner {
    /// Exit status: every model ok.
    static let exitOK: Int32 = 0
    /// Exit status: at least one model failed (its error is in the report).
    static let exitModelFailed: Int32 = 1
    /// Exit status: bad arguments, configuration or model paths.
    static let exitUsage: Int32 = 2
    /// Exit status: the report file could not be written.
    static let exitOutput: Int32 = 3

    /// Runs the program and returns its exit status.
    static func run(arguments: [String]) async -> Int32 {
        let options: CommandLineOptions
        do {
            options = try CommandLineOptions.parse(arguments)
        } catch {
            printError("\(ErrorText.describe(error))\n\(CommandLineOptions.usage)")
            return exitUsage
        }
        if options.showHelp {
            printOut(CommandLineOptions.usage)
            return exitOK
        }
        if options.showVersion {
            printOut("mobileone-harness \(Harness.version) (report schema \(Harness.reportSchemaName) v\(Harness.reportSchemaVersion))")
            return exitOK
        }

        let configuration: BenchmarkConfiguration
        let models: [ModelLocation]
        do {
            var base = BenchmarkConfiguration()
            if let configPath = options.configPath {
                base = try BenchmarkConfiguration.load(from: URL(fileURLWithPath: configPath))
            }
            configuration = try options.configuration(overriding: base)
            models = try ModelDiscovery.models(at: options.modelPaths.map { URL(fileURLWithPath: $0) })
        } catch {
            printError(ErrorText.describe(error))
            return exitUsage
        }
        guard !models.isEmpty else {
            printError("no .mlmodelc, .mlpackage or .mlmodel found in: \(options.modelPaths.joined(separator: ", "))")
            return exitUsage
        }

        let session = BenchmarkSession(
            configuration: configuration,
            configurationSource: options.configPath.map { ConfigurationSource.configFile(path: $0) } ?? ConfigurationSource.defaults,
            models: models
        )
        log("config: \(configuration.summaryText)", quiet: options.quiet)
        log("device: \(session.header.device.summaryText)", quiet: options.quiet)
        log("models found: \(models.map(\.name).joined(separator: ", "))", quiet: options.quiet)

        let hooks = BenchmarkHooks(progress: { progress in
            guard !options.quiet else { return }
            switch progress.stage {
            case .loading:
                printError("\(Harness.logPrefix) \(progress.model): loading")
            case .timing:
                let step = Swift.max(1, progress.total / 10)
                if progress.completed % step == 0 {
                    printError("\(Harness.logPrefix) \(progress.model): \(progress.completed)/\(progress.total) timed runs")
                }
            default:
                break
            }
        })

        var failures = 0
        let report = await session.run(hooks: hooks) { result in
            if result.status != .ok {
                failures += 1
            }
            log("\(result.model): \(result.displayText)", quiet: options.quiet)
            do {
                let line = try ReportCoding.markedLine(session.report(for: result))
                printOut(line)
            } catch {
                printError("\(Harness.logPrefix) \(result.model): cannot print the report: \(ErrorText.describe(error))")
            }
        }

        if let outputPath = options.outputPath {
            do {
                try ReportStore.write(report, toFile: URL(fileURLWithPath: outputPath))
                log("report written to \(outputPath)", quiet: options.quiet)
            } catch {
                printError("cannot write \(outputPath): \(ErrorText.describe(error))")
                return exitOutput
            }
        }
        return failures == 0 ? exitOK : exitModelFailed
    }

    /// Writes a line to stdout, unbuffered (so that marked lines survive a later crash).
    static func printOut(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes a line to stderr.
    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A progress line on stderr unless `quiet`.
    static func log(_ text: String, quiet: Bool) {
        if !quiet {
            printError("\(Harness.logPrefix) \(text)")
        }
    }
}
#endif
