import Foundation

/// The body of the `mobileone-harness` program (options, configuration, discovery, benchmark,
/// output), generic over the backend: `HarnessMacCLI` runs it with Core ML on a Mac, the Linux
/// tests with fakes.
public enum MacRunner {
    /// Exit status: every model ok.
    public static let exitOK: Int32 = 0
    /// Exit status: at least one model failed (its error is in the report).
    public static let exitModelFailed: Int32 = 1
    /// Exit status: bad arguments, configuration or model paths.
    public static let exitUsage: Int32 = 2
    /// Exit status: the report file could not be written.
    public static let exitOutput: Int32 = 3

    /// Runs the program with `arguments` (without the program name) and returns its exit status.
    /// Marked lines go to ``HarnessOutput/output(_:)``, everything else to ``HarnessOutput/log(_:)``.
    public static func run<Backend: BenchmarkBackend>(
        arguments: [String],
        backend: Backend,
        output: some HarnessOutput,
        device: DeviceInfo = .current(),
        clock: any MonotonicClock = UptimeClock(),
        conditions: @escaping @Sendable () -> DeviceConditions = { DeviceConditions.current() }
    ) async -> Int32 {
        let options: CommandLineOptions
        do {
            options = try CommandLineOptions.parse(arguments)
        } catch {
            output.log("\(ErrorText.describe(error))\n\(CommandLineOptions.usage)")
            return exitUsage
        }
        if options.showHelp {
            output.output(CommandLineOptions.usage)
            return exitOK
        }
        if options.showVersion {
            output.output("mobileone-harness \(Harness.version) (report schema \(Harness.reportSchemaName) v\(Harness.reportSchemaVersion))")
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
            output.log(ErrorText.describe(error))
            return exitUsage
        }
        guard !models.isEmpty else {
            output.log("no .mlmodelc, .mlpackage or .mlmodel found in: \(options.modelPaths.joined(separator: ", "))")
            return exitUsage
        }

        let session = BenchmarkSession(
            backend: backend,
            configuration: configuration,
            configurationSource: options.configPath.map { ConfigurationSource.configFile(path: $0) } ?? .defaults,
            models: models,
            device: device,
            clock: clock,
            conditions: conditions
        )
        let quiet = options.quiet
        func note(_ text: String) {
            if !quiet { output.progress(text) }
        }
        note("config: \(configuration.summaryText)")
        note("device: \(session.header.device.summaryText)")
        note("models found: \(models.map(\.name).joined(separator: ", "))")

        let hooks = BenchmarkHooks(progress: { progress in
            if let line = progressLine(progress), !quiet {
                output.progress(line)
            }
        })
        let report = await session.run(hooks: hooks, onResult: { result, _ in
            if !quiet { output.progress("\(result.model): \(result.displayText)") }
            HeadlessRun.emit(session.report(for: result), output: output)
        }, onPlan: { plan in
            HeadlessRun.emit(plan, output: output)
        })

        if let outputPath = options.outputPath {
            do {
                try ReportStore.write(report, toFile: URL(fileURLWithPath: outputPath))
                note("report written to \(outputPath)")
            } catch {
                output.log("cannot write \(outputPath): \(ErrorText.describe(error))")
                return exitOutput
            }
        }
        return report.results.allSatisfy { $0.status == .ok } ? exitOK : exitModelFailed
    }

    /// The progress line for a stage change, or for every tenth of the timed runs; nil otherwise.
    public static func progressLine(_ progress: BenchmarkProgress) -> String? {
        switch progress.stage {
        case .loading:
            return "\(progress.model): loading"
        case .timing:
            let step = Swift.max(1, progress.total / 10)
            guard progress.completed % step == 0 else { return nil }
            return "\(progress.model): \(progress.completed)/\(progress.total) timed runs"
        default:
            return nil
        }
    }
}
