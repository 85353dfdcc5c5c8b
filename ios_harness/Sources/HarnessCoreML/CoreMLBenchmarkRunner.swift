#if canImport(CoreML)
import CoreML
import Foundation
import HarnessCore

/// Runs the MobileOne benchmarking protocol (``ModelBenchmark``) on Core ML models.
public final class CoreMLBenchmarkRunner {
    /// The configuration every model is run with.
    public let configuration: BenchmarkConfiguration
    private let protocolRunner: ModelBenchmark

    /// - Parameters:
    ///   - configuration: a validated configuration.
    ///   - clock: the timing clock (tests may inject a fake one).
    public init(configuration: BenchmarkConfiguration, clock: any MonotonicClock = UptimeClock()) {
        self.configuration = configuration
        self.protocolRunner = ModelBenchmark(
            configuration: configuration,
            clock: clock,
            describeError: CoreMLErrorText.describe
        )
    }

    /// Benchmarks one compiled model (`.mlmodelc`). Never throws: a failure is recorded in the
    /// result.
    ///
    /// Loading uses an `MLModelConfiguration` whose `computeUnits` comes from the configuration;
    /// each timed prediction is one `MLModel.prediction(from:)` call on the preallocated input
    /// (inside an autorelease pool, so that 1000 outputs do not pile up in memory).
    public func benchmark(
        compiledModelAt url: URL,
        name: String,
        file: String,
        hooks: BenchmarkHooks = .empty
    ) -> ModelResult {
        let mlConfiguration = MLModelConfiguration()
        mlConfiguration.computeUnits = configuration.computeUnits.mlComputeUnits
        return protocolRunner.run(
            model: name,
            file: file,
            hooks: hooks,
            load: { try MLModel(contentsOf: url, configuration: mlConfiguration) },
            prepare: { (model: MLModel) in try InputFactory.makeInput(for: model.modelDescription) },
            predict: { (model: MLModel, input: MLDictionaryFeatureProvider) in
                try autoreleasepool {
                    _ = try model.prediction(from: input)
                }
            }
        )
    }

    /// Benchmarks the models of `locations` that the configuration selects (all of them when its
    /// `models` list is empty), one after the other, compiling `.mlpackage` / `.mlmodel` files
    /// first. Models the configuration names but `locations` lacks get a "not found" result.
    ///
    /// - Parameter onResult: called with each result as soon as it exists (the headless test
    ///   prints it right away, so that a crash later loses nothing).
    /// - Returns: all results, in run order.
    public func run(
        locations: [ModelLocation],
        hooks: BenchmarkHooks = .empty,
        onResult: (ModelResult) -> Void = { _ in }
    ) async -> [ModelResult] {
        let selection = ModelSelection.select(from: locations, name: { $0.name }, requested: configuration.models)
        var results: [ModelResult] = []
        for location in selection.selected {
            let result = await benchmarkCompilingIfNeeded(location, hooks: hooks)
            onResult(result)
            results.append(result)
        }
        let availableNames = locations.map(\.name)
        for requested in selection.missing {
            let result = ModelResult.notFound(requested: requested, available: availableNames, configuration: configuration)
            onResult(result)
            results.append(result)
        }
        return results
    }

    /// Compiles `location` when needed, benchmarks it, and removes a temporary compiled copy.
    private func benchmarkCompilingIfNeeded(_ location: ModelLocation, hooks: BenchmarkHooks) async -> ModelResult {
        let compiledURL: URL
        do {
            compiledURL = try await ModelCompiler.compiledURL(for: location)
        } catch {
            return ModelResult.failure(
                model: location.name,
                file: location.fileName,
                configuration: configuration,
                message: "compile failed: \(CoreMLErrorText.describe(error))"
            )
        }
        defer {
            if compiledURL != location.url {
                try? FileManager.default.removeItem(at: compiledURL)
            }
        }
        return benchmark(compiledModelAt: compiledURL, name: location.name, file: location.fileName, hooks: hooks)
    }
}

/// One benchmark run of an app or headless test: the configuration and where it came from, the
/// device, the models found, and the report header every result shares.
public final class BenchmarkSession {
    /// The run configuration.
    public let configuration: BenchmarkConfiguration
    /// Where ``configuration`` came from.
    public let configurationSource: ConfigurationSource
    /// The models found (before the configuration's selection).
    public let models: [ModelLocation]
    /// The report every result is added to (no results yet).
    public let header: HarnessReport

    public init(
        configuration: BenchmarkConfiguration,
        configurationSource: ConfigurationSource,
        models: [ModelLocation],
        device: DeviceInfo = .current(),
        created: Date = Date()
    ) {
        self.configuration = configuration
        self.configurationSource = configurationSource
        self.models = models
        self.header = HarnessReport(created: created, device: device, config: configuration, results: [])
    }

    /// A session over the models bundled with the app, configured from `MOBILEONE_BENCH_CONFIG`
    /// or the bundled `run_config.json`, else the defaults
    /// (``HarnessCore/BenchmarkConfiguration/resolve(environment:bundledConfigURL:)``).
    ///
    /// - Throws: ``HarnessCore/ConfigurationError`` for a bad configuration.
    public static func bundled(
        bundle: Bundle = .main,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> BenchmarkSession {
        let configURL = bundle.url(forResource: Harness.bundledConfigResourceName, withExtension: "json")
        let resolved = try BenchmarkConfiguration.resolve(environment: environment, bundledConfigURL: configURL)
        return BenchmarkSession(
            configuration: resolved.configuration,
            configurationSource: resolved.source,
            models: ModelDiscovery.bundledModels(in: bundle)
        )
    }

    /// The single-result report printed as a marked line for `result`.
    public func report(for result: ModelResult) -> HarnessReport {
        header.with(results: [result])
    }

    /// Runs the session's models.
    ///
    /// - Parameters:
    ///   - only: model names to run instead of the configuration's list (the app's "run one").
    ///   - hooks: progress and cancellation.
    ///   - onResult: called with each result as soon as it exists.
    /// - Returns: the report with every result.
    public func run(
        only: [String]? = nil,
        hooks: BenchmarkHooks = .empty,
        onResult: (ModelResult) -> Void = { _ in }
    ) async -> HarnessReport {
        var configuration = self.configuration
        if let only {
            configuration.models = only
        }
        let runner = CoreMLBenchmarkRunner(configuration: configuration)
        let results = await runner.run(locations: models, hooks: hooks, onResult: onResult)
        var report = header.with(results: results)
        report.config = configuration
        return report
    }
}
#endif
