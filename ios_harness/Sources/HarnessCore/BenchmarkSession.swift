import Foundation

/// One benchmark run of the app, the headless test or the macOS runner: the configuration and
/// where it came from, the models found, the report header every result shares, and the backend.
public struct BenchmarkSession<Backend: BenchmarkBackend>: Sendable {
    /// The framework that loads and runs the models.
    public let backend: Backend
    /// The run configuration.
    public let configuration: BenchmarkConfiguration
    /// Where ``configuration`` came from.
    public let configurationSource: ConfigurationSource
    /// The models found (before the configuration's selection).
    public let models: [ModelLocation]
    /// The report every result is added to (no results yet).
    public let header: HarnessReport
    /// The clock of every timing.
    public let clock: any MonotonicClock
    /// Reads the device conditions before and after each model's timed runs.
    public let conditions: @Sendable () -> DeviceConditions

    public init(
        backend: Backend,
        configuration: BenchmarkConfiguration,
        configurationSource: ConfigurationSource,
        models: [ModelLocation],
        device: DeviceInfo = .current(),
        created: Date = Date(),
        clock: any MonotonicClock = UptimeClock(),
        conditions: @escaping @Sendable () -> DeviceConditions = { DeviceConditions.current() }
    ) {
        self.backend = backend
        self.configuration = configuration
        self.configurationSource = configurationSource
        self.models = models
        self.header = HarnessReport(created: created, device: device, config: configuration, results: [])
        self.clock = clock
        self.conditions = conditions
    }

    /// A session over the models bundled with an app whose resources are at `resourceURL`
    /// (``ModelDiscovery/bundledModels(resourceURL:fileManager:)``), configured from
    /// `MOBILEONE_BENCH_CONFIG` or the bundled `run_config.json`, else the defaults
    /// (``BenchmarkConfiguration/resolve(environment:bundledConfigURL:)``).
    ///
    /// - Throws: ``ConfigurationError`` for a bad configuration.
    public static func bundled(
        backend: Backend,
        resourceURL: URL?,
        environment: [String: String],
        device: DeviceInfo = .current()
    ) throws -> BenchmarkSession {
        let configURL = resourceURL
            .map { $0.appendingPathComponent("\(Harness.bundledConfigResourceName).json") }
            .flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil }
        let resolved = try BenchmarkConfiguration.resolve(environment: environment, bundledConfigURL: configURL)
        return BenchmarkSession(
            backend: backend,
            configuration: resolved.configuration,
            configurationSource: resolved.source,
            models: ModelDiscovery.bundledModels(resourceURL: resourceURL),
            device: device
        )
    }

    /// The single-result report printed as a marked line for `result`.
    public func report(for result: ModelResult) -> HarnessReport {
        header.with(results: [result])
    }

    /// The models the configuration (or `only`) selects, and the requested names not found.
    public func selection(only: [String]? = nil) -> (selected: [ModelLocation], missing: [String]) {
        ModelSelection.select(from: models, name: { $0.name }, requested: only ?? configuration.models)
    }

    /// Runs the selected models one after the other: compiles each when needed, then loads it,
    /// prepares its input and times it on a dedicated ``TimingThread``; requested models that
    /// were not found get a "not found" result.
    ///
    /// - Parameters:
    ///   - only: model names to run instead of the configuration's list (the app's "run one").
    ///   - hooks: progress and cancellation (called on the timing thread).
    ///   - onResult: called with each result as soon as it exists, and the report so far (the
    ///     headless test prints the first and saves the second, so that a crash later loses
    ///     nothing).
    ///   - onPlan: when given, called with each model's compute plan (``BenchmarkBackend/computePlan(_:computeUnits:)``,
    ///     asked after its timed runs, before its result is passed on).
    /// - Returns: the report with every result.
    public func run(
        only: [String]? = nil,
        hooks: BenchmarkHooks = .empty,
        onResult: @Sendable (ModelResult, _ soFar: HarnessReport) async -> Void = { _, _ in },
        onPlan: (@Sendable (ComputePlanReport) async -> Void)? = nil
    ) async -> HarnessReport {
        var configuration = self.configuration
        if let only {
            configuration.models = only
        }
        let backend = self.backend
        let benchmark = ModelBenchmark(
            configuration: configuration,
            clock: clock,
            describeError: { backend.describe($0) },
            conditions: conditions
        )
        var report = header.with(results: [])
        report.config = configuration

        let chosen = selection(only: only)
        for location in chosen.selected {
            let result: ModelResult
            if let isCancelled = hooks.isCancelled, isCancelled() {
                result = ModelResult.failure(
                    model: location.name, file: location.fileName, configuration: configuration,
                    message: "cancelled before loading", clock: clock.identifier)
            } else {
                let outcome: ComputePlanOutcome?
                (result, outcome) = await Self.benchmark(
                    location, with: benchmark, backend: backend, hooks: hooks, wantsPlan: onPlan != nil)
                if let onPlan, let outcome {
                    await onPlan(ComputePlanReport(
                        header: header, model: location.name, file: location.fileName,
                        computeUnits: configuration.computeUnits, outcome: outcome))
                }
            }
            report.results.append(result)
            await onResult(result, report)
        }
        let available = models.map(\.name)
        for requested in chosen.missing {
            let result = ModelResult.notFound(requested: requested, available: available, configuration: configuration)
            report.results.append(result)
            await onResult(result, report)
        }
        return report
    }

    /// Compiles `location` if needed, benchmarks it on the timing thread, and cleans up.
    private static func benchmark(
        _ location: ModelLocation,
        with benchmark: ModelBenchmark,
        backend: Backend,
        hooks: BenchmarkHooks,
        wantsPlan: Bool
    ) async -> (ModelResult, ComputePlanOutcome?) {
        let compiled: CompiledModel
        do {
            compiled = try await backend.compile(location)
        } catch {
            return (ModelResult.failure(
                model: location.name,
                file: location.fileName,
                configuration: benchmark.configuration,
                message: "compile failed: \(backend.describe(error))",
                clock: benchmark.loop.clock.identifier
            ), nil)
        }
        let result = await TimingThread.run {
            benchmark.run(compiled, backend: backend, hooks: hooks)
        }
        let plan = wantsPlan ? await backend.computePlan(compiled, computeUnits: benchmark.configuration.computeUnits) : nil
        backend.discard(compiled)
        return (result, plan)
    }
}
