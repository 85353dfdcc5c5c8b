import Foundation

/// Where a model's benchmark is, for progress display.
public struct BenchmarkProgress: Equatable, Sendable {
    /// Stages of ``ModelBenchmark/run(model:file:hooks:load:prepare:predict:)``, in order.
    public enum Stage: String, Sendable {
        case loading
        case preparingInput
        case firstRun
        case warmup
        case timing
        case finished
    }

    /// Model name.
    public var model: String
    /// Current stage.
    public var stage: Stage
    /// Timed runs completed (only counts during ``Stage/timing``).
    public var completed: Int
    /// Timed runs in total.
    public var total: Int

    public init(model: String, stage: Stage, completed: Int, total: Int) {
        self.model = model
        self.stage = stage
        self.completed = completed
        self.total = total
    }

    /// Fraction of the timed runs done, in `[0, 1]`.
    public var fraction: Double {
        total > 0 ? Double(completed) / Double(total) : 0
    }
}

/// Callbacks of a benchmark. They run on the timing thread, between predictions, never inside a
/// timed one; keep them cheap and hop to the main actor yourself.
public struct BenchmarkHooks: Sendable {
    /// Stage changes and each completed timed run.
    public var progress: (@Sendable (BenchmarkProgress) -> Void)?
    /// Polled between predictions; true stops the model with an error result.
    public var isCancelled: (@Sendable () -> Bool)?

    public init(progress: (@Sendable (BenchmarkProgress) -> Void)? = nil, isCancelled: (@Sendable () -> Bool)? = nil) {
        self.progress = progress
        self.isCancelled = isCancelled
    }

    /// No callbacks.
    public static var empty: BenchmarkHooks { BenchmarkHooks() }
}

/// An input value prepared once, before timing, and how it is described in the report.
public struct PreparedInput<Value> {
    /// What the prediction closure receives (for Core ML, an `MLDictionaryFeatureProvider`).
    public var value: Value
    /// The report's description of each input, in name order.
    public var descriptions: [InputDescription]

    public init(value: Value, descriptions: [InputDescription]) {
        self.value = value
        self.descriptions = descriptions
    }
}

/// The benchmarking protocol of the MobileOne paper (Section 3.5), independent of Core ML:
///
/// 1. load the model (timed once: `load_ms`);
/// 2. preallocate the input (not timed);
/// 3. run once (timed once: `first_run_ms`, not a sample);
/// 4. run `warmup` more times untimed (0 by default: the paper runs the model once, then times);
/// 5. read the device conditions, time `runs` predictions one by one (`samples_ms`), each a full
///    round trip of `predict`, and read the conditions again.
///
/// A failure at any stage is data: the result gets status `error`, a message naming the stage,
/// and whatever was measured before the failure (but no samples).
public struct ModelBenchmark: Sendable {
    /// The configuration every model is run with.
    public let configuration: BenchmarkConfiguration
    /// The timing loop (and its clock).
    public let loop: TimingLoop
    /// Turns an underlying error into the message text of a failed result.
    public let describeError: @Sendable (Error) -> String
    /// Reads thermal state and Low Power Mode before and after the timed runs.
    public let conditions: @Sendable () -> DeviceConditions

    /// - Parameters:
    ///   - configuration: a validated configuration.
    ///   - clock: the clock; a fake one in tests.
    ///   - describeError: how to print framework errors (the backend's ``BenchmarkBackend/describe(_:)``).
    ///   - conditions: the device conditions now (``DeviceConditions/current(processInfo:)``).
    public init(
        configuration: BenchmarkConfiguration,
        clock: any MonotonicClock = UptimeClock(),
        describeError: @escaping @Sendable (Error) -> String = ErrorText.describe,
        conditions: @escaping @Sendable () -> DeviceConditions = { DeviceConditions.current() }
    ) {
        self.configuration = configuration
        self.loop = TimingLoop(clock: clock)
        self.describeError = describeError
        self.conditions = conditions
    }

    /// Benchmarks one compiled model with `backend`, on the calling thread (the session calls it
    /// on the ``TimingThread``). Never throws: a failure becomes a result with status `error`.
    public func run<Backend: BenchmarkBackend>(
        _ compiled: CompiledModel,
        backend: Backend,
        hooks: BenchmarkHooks = .empty
    ) -> ModelResult {
        let units = configuration.computeUnits
        return run(
            model: compiled.location.name,
            file: compiled.location.fileName,
            hooks: hooks,
            load: { try backend.load(compiled, computeUnits: units) },
            prepare: { (model: Backend.Model) -> PreparedInput<Backend.Input> in
                let plan = try InputPlanner.plan(backend.inputFeatures(of: model))
                let input = try backend.makeInput(plan, for: model)
                return PreparedInput(value: input, descriptions: plan.map(\.description))
            },
            predict: { (model: Backend.Model, input: Backend.Input) in try backend.predict(model, input) }
        )
    }

    /// Benchmarks one model. Never throws: a failure becomes a result with status `error`.
    ///
    /// - Parameters:
    ///   - model: model name for the report.
    ///   - file: model file name for the report.
    ///   - hooks: progress and cancellation.
    ///   - load: creates the model; timed once.
    ///   - prepare: builds the input once, before any prediction; not timed.
    ///   - predict: one prediction, the full round trip; timed.
    public func run<Model, Input>(
        model: String,
        file: String,
        hooks: BenchmarkHooks = .empty,
        load: () throws -> Model,
        prepare: (Model) throws -> PreparedInput<Input>,
        predict: (Model, Input) throws -> Void
    ) -> ModelResult {
        let total = configuration.runs
        func report(_ stage: BenchmarkProgress.Stage, completed: Int = 0) {
            hooks.progress?(BenchmarkProgress(model: model, stage: stage, completed: completed, total: total))
        }
        func failure(
            _ message: String,
            inputs: [InputDescription] = [],
            loadMs: Double? = nil,
            firstRunMs: Double? = nil,
            before: DeviceConditions? = nil
        ) -> ModelResult {
            report(.finished)
            return ModelResult.failure(
                model: model,
                file: file,
                configuration: configuration,
                message: message,
                clock: loop.clock.identifier,
                inputs: inputs,
                loadMs: loadMs,
                firstRunMs: firstRunMs,
                conditionsBefore: before
            )
        }

        if let isCancelled = hooks.isCancelled, isCancelled() {
            return failure("cancelled before loading")
        }

        // 1. Load (timed once).
        report(.loading)
        let loaded: Model
        let loadMs: Double
        do {
            let timed = try loop.timeOnce { try load() }
            loaded = timed.value
            loadMs = timed.milliseconds
        } catch {
            return failure("load failed: \(describeError(error))")
        }

        // 2. Preallocate the input (not timed).
        report(.preparingInput)
        let input: PreparedInput<Input>
        do {
            input = try prepare(loaded)
        } catch {
            return failure("input preparation failed: \(describeError(error))", loadMs: loadMs)
        }

        // 3. First run (timed once, not a sample).
        report(.firstRun)
        let firstRunMs: Double
        do {
            firstRunMs = try loop.timeOnce { try predict(loaded, input.value) }.milliseconds
        } catch {
            return failure("first run failed: \(describeError(error))", inputs: input.descriptions, loadMs: loadMs)
        }

        // 4. Warmup (untimed; none by default).
        report(.warmup)
        let timingHooks = TimingHooks(
            progress: { completed, _ in report(.timing, completed: completed) },
            isCancelled: hooks.isCancelled
        )
        do {
            try loop.runUntimed(configuration.warmup, hooks: timingHooks) {
                try predict(loaded, input.value)
            }
        } catch {
            return failure(describe(error), inputs: input.descriptions, loadMs: loadMs, firstRunMs: firstRunMs)
        }

        // 5. The timed runs, between two readings of the device conditions.
        let before = conditions()
        let samples: [Double]
        do {
            samples = try loop.measure(warmup: 0, runs: configuration.runs, hooks: timingHooks) {
                try predict(loaded, input.value)
            }
        } catch {
            return failure(describe(error), inputs: input.descriptions, loadMs: loadMs, firstRunMs: firstRunMs, before: before)
        }
        let after = conditions()

        report(.finished, completed: samples.count)
        return ModelResult(
            model: model,
            file: file,
            status: .ok,
            errorMessage: nil,
            computeUnits: configuration.computeUnits,
            inputs: input.descriptions,
            loadMs: loadMs,
            firstRunMs: firstRunMs,
            warmup: configuration.warmup,
            runs: configuration.runs,
            clock: loop.clock.identifier,
            samplesMs: samples,
            summary: Statistics.summarize(samples),
            runsBeforeTiming: 1 + configuration.warmup,
            conditionsBefore: before,
            conditionsAfter: after
        )
    }

    /// A timing-loop error as result text, with the underlying error printed by `describeError`.
    private func describe(_ error: Error) -> String {
        guard let timing = error as? TimingError else {
            return "timing failed: \(describeError(error))"
        }
        switch timing {
        case let .iterationFailed(phase, iteration, total, underlying):
            let what = phase == .warmup ? "warmup run" : "timed run"
            return "\(what) \(iteration + 1) of \(total) failed: \(describeError(underlying))"
        default:
            return timing.description
        }
    }
}
