import Foundation

/// The system's thermal state (`ProcessInfo.thermalState`).
public enum ThermalState: String, Codable, CaseIterable, Sendable {
    case nominal
    case fair
    case serious
    case critical
    /// The platform does not report a thermal state (e.g. Linux).
    case unknown
}

/// The machine a benchmark ran on. ``DeviceInfo/current(processInfo:)`` captures it.
public struct DeviceInfo: Codable, Equatable, Sendable {
    /// Hardware model identifier, e.g. `iPhone13,2` (iPhone 12) or `Mac14,2`; `unknown` on Linux.
    public var modelIdentifier: String
    /// `iOS`, `macOS`, `Linux` or `unknown`.
    public var osName: String
    /// `major.minor.patch`, e.g. `17.5.1`.
    public var osVersion: String
    /// Thermal state at report time.
    public var thermalState: ThermalState
    /// Low Power Mode at report time; nil where the platform does not report it.
    public var lowPowerMode: Bool?
    /// Number of processing cores.
    public var processorCount: Int
    /// Physical memory in bytes.
    public var physicalMemoryBytes: UInt64

    public init(
        modelIdentifier: String,
        osName: String,
        osVersion: String,
        thermalState: ThermalState,
        lowPowerMode: Bool?,
        processorCount: Int,
        physicalMemoryBytes: UInt64
    ) {
        self.modelIdentifier = modelIdentifier
        self.osName = osName
        self.osVersion = osVersion
        self.thermalState = thermalState
        self.lowPowerMode = lowPowerMode
        self.processorCount = processorCount
        self.physicalMemoryBytes = physicalMemoryBytes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelIdentifier = "model_identifier"
        case osName = "os_name"
        case osVersion = "os_version"
        case thermalState = "thermal_state"
        case lowPowerMode = "low_power_mode"
        case processorCount = "processor_count"
        case physicalMemoryBytes = "physical_memory_bytes"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        modelIdentifier = try container.decode(String.self, forKey: .modelIdentifier)
        osName = try container.decode(String.self, forKey: .osName)
        osVersion = try container.decode(String.self, forKey: .osVersion)
        thermalState = try container.decode(ThermalState.self, forKey: .thermalState)
        lowPowerMode = try container.decodeNullable(Bool.self, forKey: .lowPowerMode)
        processorCount = try container.decode(Int.self, forKey: .processorCount)
        physicalMemoryBytes = try container.decode(UInt64.self, forKey: .physicalMemoryBytes)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(modelIdentifier, forKey: .modelIdentifier)
        try container.encode(osName, forKey: .osName)
        try container.encode(osVersion, forKey: .osVersion)
        try container.encode(thermalState, forKey: .thermalState)
        try container.encodeOrNull(lowPowerMode, forKey: .lowPowerMode)
        try container.encode(processorCount, forKey: .processorCount)
        try container.encode(physicalMemoryBytes, forKey: .physicalMemoryBytes)
    }

    /// `iPhone13,2, iOS 17.5.1, thermal state nominal, low power mode off`.
    public var summaryText: String {
        let lowPower = lowPowerMode.map { $0 ? "on" : "off" } ?? "unknown"
        return "\(modelIdentifier), \(osName) \(osVersion), thermal state \(thermalState.rawValue), low power mode \(lowPower)"
    }
}

/// Whether an input is an `MLMultiArray` or an image (`CVPixelBuffer`).
public enum InputKind: String, Codable, Sendable {
    case multiArray = "multiarray"
    case image = "image"
}

/// One model input, as the harness preallocated it.
public struct InputDescription: Codable, Equatable, Sendable {
    /// Feature name from the model description.
    public var name: String
    /// Multi-array or image.
    public var kind: InputKind
    /// Multi-array: the shape used. Image: `[height, width]`.
    public var shape: [Int]
    /// `float32`, `float16`, `double`, `int32`, `int8`, or an image format name
    /// (``PixelFormatName``), e.g. `bgra8`.
    public var dataType: String

    public init(name: String, kind: InputKind, shape: [Int], dataType: String) {
        self.name = name
        self.kind = kind
        self.shape = shape
        self.dataType = dataType
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, kind, shape
        case dataType = "data_type"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        kind = try container.decode(InputKind.self, forKey: .kind)
        shape = try container.decode([Int].self, forKey: .shape)
        dataType = try container.decode(String.self, forKey: .dataType)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(kind, forKey: .kind)
        try container.encode(shape, forKey: .shape)
        try container.encode(dataType, forKey: .dataType)
    }
}

/// Whether a model was measured.
public enum ResultStatus: String, Codable, Sendable {
    case ok
    case error
}

/// The outcome of benchmarking one model (schema: `$defs/result`).
public struct ModelResult: Codable, Equatable, Sendable {
    /// Model name: the file stem (`mobileone_s0`).
    public var model: String
    /// File name as bundled or given (`mobileone_s0.mlmodelc`).
    public var file: String
    /// `ok` when every stage succeeded.
    public var status: ResultStatus
    /// Why the model failed (JSON key `error`); nil when `status` is `ok`.
    public var errorMessage: String?
    /// Compute units the model was loaded with.
    public var computeUnits: ComputeUnits
    /// Inputs the harness built, in name order.
    public var inputs: [InputDescription]
    /// Model load time in milliseconds; nil when not reached or failed.
    public var loadMs: Double?
    /// First prediction time in milliseconds; nil when not reached or failed.
    public var firstRunMs: Double?
    /// Untimed predictions before the timed runs.
    public var warmup: Int
    /// Timed predictions.
    public var runs: Int
    /// Clock identifier (``Harness/clockIdentifier``).
    public var clock: String
    /// Raw latencies in milliseconds, in run order: `runs` values when ok, none on error.
    public var samplesMs: [Double]
    /// Display statistics over `samplesMs`; nil on error.
    public var summary: SummaryStatistics?
    /// Predictions before the first sample: the first run (timed on its own as `firstRunMs`) plus
    /// `warmup` untimed ones; nil in reports of harness 0.1 (JSON key `runs_before_timing`).
    public var runsBeforeTiming: Int?
    /// Thermal state and Low Power Mode right before the first timed run; nil when the model
    /// failed earlier, and in reports of harness 0.1.
    public var conditionsBefore: DeviceConditions?
    /// The same right after the last timed run; nil when the timed runs did not finish.
    public var conditionsAfter: DeviceConditions?

    public init(
        model: String,
        file: String,
        status: ResultStatus,
        errorMessage: String?,
        computeUnits: ComputeUnits,
        inputs: [InputDescription],
        loadMs: Double?,
        firstRunMs: Double?,
        warmup: Int,
        runs: Int,
        clock: String,
        samplesMs: [Double],
        summary: SummaryStatistics?,
        runsBeforeTiming: Int? = nil,
        conditionsBefore: DeviceConditions? = nil,
        conditionsAfter: DeviceConditions? = nil
    ) {
        self.model = model
        self.file = file
        self.status = status
        self.errorMessage = errorMessage
        self.computeUnits = computeUnits
        self.inputs = inputs
        self.loadMs = loadMs
        self.firstRunMs = firstRunMs
        self.warmup = warmup
        self.runs = runs
        self.clock = clock
        self.samplesMs = samplesMs
        self.summary = summary
        self.runsBeforeTiming = runsBeforeTiming
        self.conditionsBefore = conditionsBefore
        self.conditionsAfter = conditionsAfter
    }

    /// Keys a report may lack (added in harness 0.2, schema still version 1): written when they
    /// have a value, read when present.
    static let optionalKeys: Set<CodingKeys> = [.runsBeforeTiming, .conditionsBefore, .conditionsAfter]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model
        case file
        case status
        case errorMessage = "error"
        case computeUnits = "compute_units"
        case inputs
        case loadMs = "load_ms"
        case firstRunMs = "first_run_ms"
        case warmup
        case runs
        case clock
        case samplesMs = "samples_ms"
        case summary
        case runsBeforeTiming = "runs_before_timing"
        case conditionsBefore = "conditions_before"
        case conditionsAfter = "conditions_after"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(String.self, forKey: .model)
        file = try container.decode(String.self, forKey: .file)
        status = try container.decode(ResultStatus.self, forKey: .status)
        errorMessage = try container.decodeNullable(String.self, forKey: .errorMessage)
        computeUnits = try container.decode(ComputeUnits.self, forKey: .computeUnits)
        inputs = try container.decode([InputDescription].self, forKey: .inputs)
        loadMs = try container.decodeNullable(Double.self, forKey: .loadMs)
        firstRunMs = try container.decodeNullable(Double.self, forKey: .firstRunMs)
        warmup = try container.decode(Int.self, forKey: .warmup)
        runs = try container.decode(Int.self, forKey: .runs)
        clock = try container.decode(String.self, forKey: .clock)
        samplesMs = try container.decode([Double].self, forKey: .samplesMs)
        summary = try container.decodeNullable(SummaryStatistics.self, forKey: .summary)
        runsBeforeTiming = try container.decodeIfPresent(Int.self, forKey: .runsBeforeTiming)
        conditionsBefore = try container.decodeIfPresent(DeviceConditions.self, forKey: .conditionsBefore)
        conditionsAfter = try container.decodeIfPresent(DeviceConditions.self, forKey: .conditionsAfter)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(model, forKey: .model)
        try container.encode(file, forKey: .file)
        try container.encode(status, forKey: .status)
        try container.encodeOrNull(errorMessage, forKey: .errorMessage)
        try container.encode(computeUnits, forKey: .computeUnits)
        try container.encode(inputs, forKey: .inputs)
        try container.encodeOrNull(loadMs, forKey: .loadMs)
        try container.encodeOrNull(firstRunMs, forKey: .firstRunMs)
        try container.encode(warmup, forKey: .warmup)
        try container.encode(runs, forKey: .runs)
        try container.encode(clock, forKey: .clock)
        try container.encode(samplesMs, forKey: .samplesMs)
        try container.encodeOrNull(summary, forKey: .summary)
        try container.encodeIfPresent(runsBeforeTiming, forKey: .runsBeforeTiming)
        try container.encodeIfPresent(conditionsBefore, forKey: .conditionsBefore)
        try container.encodeIfPresent(conditionsAfter, forKey: .conditionsAfter)
    }

    /// A failed result: no samples, no summary, whatever stages were reached kept.
    public static func failure(
        model: String,
        file: String,
        configuration: BenchmarkConfiguration,
        message: String,
        clock: String = Harness.clockIdentifier,
        inputs: [InputDescription] = [],
        loadMs: Double? = nil,
        firstRunMs: Double? = nil,
        conditionsBefore: DeviceConditions? = nil
    ) -> ModelResult {
        ModelResult(
            model: model,
            file: file,
            status: .error,
            errorMessage: ErrorText.oneLine(message),
            computeUnits: configuration.computeUnits,
            inputs: inputs,
            loadMs: loadMs,
            firstRunMs: firstRunMs,
            warmup: configuration.warmup,
            runs: configuration.runs,
            clock: clock,
            samplesMs: [],
            summary: nil,
            runsBeforeTiming: 1 + configuration.warmup,
            conditionsBefore: conditionsBefore
        )
    }

    /// The result for a model the configuration asked for but that is not among `available`.
    ///
    /// - Parameters:
    ///   - requested: the entry of ``BenchmarkConfiguration/models`` (name or file name).
    ///   - available: names of the models that were found.
    public static func notFound(
        requested: String,
        available: [String],
        configuration: BenchmarkConfiguration
    ) -> ModelResult {
        let name = ModelSelection.modelName(fromFileName: requested)
        let file = ModelSelection.hasModelExtension(requested) ? requested : "\(name).mlmodelc"
        let availableText = available.isEmpty ? "no models available" : "available: \(available.joined(separator: ", "))"
        return failure(
            model: name,
            file: file,
            configuration: configuration,
            message: "not found: no model named '\(name)' (\(availableText))"
        )
    }

    /// `load 98.765 ms, first run 4.913 ms, min ... (n = 20)`, or `error: <message>`.
    public var displayText: String {
        guard status == .ok, let summary else {
            return "error: \(errorMessage ?? "unknown error")"
        }
        var parts: [String] = []
        if let loadMs { parts.append("load \(DisplayFormat.milliseconds(loadMs))") }
        if let firstRunMs { parts.append("first run \(DisplayFormat.milliseconds(firstRunMs))") }
        parts.append(summary.displayText)
        return parts.joined(separator: ", ")
    }
}

/// A latency report: one device, one configuration, one result per model
/// (schema `mobileone_bench/data/harness_report.schema.json`, version 1).
public struct HarnessReport: Codable, Equatable, Sendable {
    /// Always ``Harness/reportSchemaName``.
    public var schema: String { Harness.reportSchemaName }
    /// Always ``Harness/reportSchemaVersion``.
    public var schemaVersion: Int { Harness.reportSchemaVersion }
    /// Version of the harness that wrote the report.
    public var harnessVersion: String
    /// Creation time, whole seconds (written as ISO-8601 UTC, `2026-11-28T12:00:00Z`).
    public var created: Date
    /// The machine.
    public var device: DeviceInfo
    /// The effective configuration.
    public var config: BenchmarkConfiguration
    /// One result per model, in run order.
    public var results: [ModelResult]

    /// Creates a report; `created` is truncated to whole seconds so that it survives a JSON
    /// round trip unchanged.
    public init(
        created: Date = Date(),
        device: DeviceInfo,
        config: BenchmarkConfiguration,
        results: [ModelResult],
        harnessVersion: String = Harness.version
    ) {
        self.harnessVersion = harnessVersion
        self.created = Date(timeIntervalSince1970: created.timeIntervalSince1970.rounded(.down))
        self.device = device
        self.config = config
        self.results = results
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schema
        case schemaVersion = "schema_version"
        case harnessVersion = "harness_version"
        case created
        case device
        case config
        case results
    }

    /// Decodes strictly: every key required, unknown keys rejected, `schema` and
    /// `schema_version` checked first.
    ///
    /// - Throws: ``ReportError/wrongSchema(_:)``, ``ReportError/unsupportedSchemaVersion(_:)``,
    ///   `DecodingError`, or ``ConfigurationError`` for a bad `config`.
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let schema = try container.decode(String.self, forKey: .schema)
        guard schema == Harness.reportSchemaName else {
            throw ReportError.wrongSchema(schema)
        }
        let version = try container.decode(Int.self, forKey: .schemaVersion)
        guard version == Harness.reportSchemaVersion else {
            throw ReportError.unsupportedSchemaVersion(version)
        }
        harnessVersion = try container.decode(String.self, forKey: .harnessVersion)
        created = try container.decode(Date.self, forKey: .created)
        device = try container.decode(DeviceInfo.self, forKey: .device)
        config = try container.decode(StrictConfiguration.self, forKey: .config).value
        results = try container.decode([ModelResult].self, forKey: .results)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schema, forKey: .schema)
        try container.encode(schemaVersion, forKey: .schemaVersion)
        try container.encode(harnessVersion, forKey: .harnessVersion)
        try container.encode(created, forKey: .created)
        try container.encode(device, forKey: .device)
        try container.encode(config, forKey: .config)
        try container.encode(results, forKey: .results)
    }

    /// The same report with other results (e.g. the single-result reports of marked lines).
    public func with(results: [ModelResult]) -> HarnessReport {
        var copy = self
        copy.results = results
        return copy
    }

    /// Joins single-result reports of one run (same harness version, creation time, device and
    /// configuration) into one report with all their results, in order.
    ///
    /// - Throws: ``ReportError/cannotMerge(_:)`` when `reports` is empty or their headers differ.
    public static func merging(_ reports: [HarnessReport]) throws -> HarnessReport {
        guard let first = reports.first else {
            throw ReportError.cannotMerge("no reports to merge")
        }
        for (index, report) in reports.enumerated().dropFirst() {
            guard report.harnessVersion == first.harnessVersion,
                  report.created == first.created,
                  report.device == first.device,
                  report.config == first.config
            else {
                throw ReportError.cannotMerge("report \(index) comes from another run (header differs from report 0)")
            }
        }
        return first.with(results: reports.flatMap(\.results))
    }

    /// Semantic checks beyond decoding: the rules of the schema, plus what a JSON Schema cannot
    /// say (an ok result has exactly `runs` samples; its summary counts them).
    ///
    /// - Returns: one message per problem, each starting with a JSON path; empty when valid.
    public func validationProblems() -> [String] {
        var problems: [String] = []
        if harnessVersion.isEmpty {
            problems.append("harness_version: must not be empty")
        }
        do {
            try config.validate()
        } catch {
            problems.append("config: \(ErrorText.describe(error))")
        }
        if device.modelIdentifier.isEmpty { problems.append("device.model_identifier: must not be empty") }
        if device.osName.isEmpty { problems.append("device.os_name: must not be empty") }
        if device.osVersion.isEmpty { problems.append("device.os_version: must not be empty") }
        if device.processorCount < 1 { problems.append("device.processor_count: must be >= 1") }
        for (index, result) in results.enumerated() {
            problems += result.validationProblems(path: "results[\(index)]")
        }
        return problems
    }

    /// Throws ``ReportError/invalid(_:)`` listing every problem of ``validationProblems()``.
    public func validate() throws {
        let problems = validationProblems()
        guard problems.isEmpty else {
            throw ReportError.invalid(problems)
        }
    }
}

extension ModelResult {
    /// Semantic checks of one result; `path` prefixes each message.
    func validationProblems(path: String) -> [String] {
        var problems: [String] = []
        func add(_ field: String, _ message: String) {
            problems.append("\(path).\(field): \(message)")
        }
        if model.isEmpty { add("model", "must not be empty") }
        if file.isEmpty { add("file", "must not be empty") }
        if clock != Harness.clockIdentifier { add("clock", "unknown clock \"\(clock)\"") }
        if warmup < 0 || warmup > BenchmarkConfiguration.maximumWarmup {
            add("warmup", "must be in 0...\(BenchmarkConfiguration.maximumWarmup) (got \(warmup))")
        }
        if runs < 1 || runs > BenchmarkConfiguration.maximumRuns {
            add("runs", "must be in 1...\(BenchmarkConfiguration.maximumRuns) (got \(runs))")
        }
        if let runsBeforeTiming, runsBeforeTiming != 1 + warmup {
            add("runs_before_timing", "is \(runsBeforeTiming) but the first run plus warmup is \(1 + warmup)")
        }
        if let loadMs, !(loadMs.isFinite && loadMs >= 0) { add("load_ms", "must be a number >= 0") }
        if let firstRunMs, !(firstRunMs.isFinite && firstRunMs >= 0) { add("first_run_ms", "must be a number >= 0") }
        if let bad = samplesMs.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
            add("samples_ms[\(bad)]", "must be a number >= 0")
        }
        for (index, input) in inputs.enumerated() {
            if input.name.isEmpty { add("inputs[\(index)].name", "must not be empty") }
            if input.shape.isEmpty || input.shape.contains(where: { $0 < 1 }) {
                add("inputs[\(index)].shape", "must be a non-empty list of sizes >= 1")
            }
        }
        switch status {
        case .ok:
            if errorMessage != nil { add("error", "must be null when status is ok") }
            if loadMs == nil { add("load_ms", "must be a number when status is ok") }
            if firstRunMs == nil { add("first_run_ms", "must be a number when status is ok") }
            if samplesMs.count != runs {
                add("samples_ms", "has \(samplesMs.count) samples but runs is \(runs)")
            }
            if let summary {
                if summary.n != samplesMs.count {
                    add("summary.n", "is \(summary.n) but there are \(samplesMs.count) samples")
                }
            } else {
                add("summary", "must not be null when status is ok")
            }
        case .error:
            if (errorMessage ?? "").isEmpty { add("error", "must be a non-empty message when status is error") }
            if !samplesMs.isEmpty { add("samples_ms", "must be empty when status is error") }
            if summary != nil { add("summary", "must be null when status is error") }
        }
        return problems
    }
}

/// Decodes a report's `config`: every key required, then the usual validation.
private struct StrictConfiguration: Decodable {
    let value: BenchmarkConfiguration

    init(from decoder: Decoder) throws {
        try decoder.requireKeys(BenchmarkConfiguration.CodingKeys.self)
        value = try BenchmarkConfiguration(from: decoder)
    }
}

/// What is wrong with a report or a marked line.
public enum ReportError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// `schema` is not ``Harness/reportSchemaName``.
    case wrongSchema(String)
    /// `schema_version` is not one this harness reads.
    case unsupportedSchemaVersion(Int)
    /// Decoded, but breaks the rules listed.
    case invalid([String])
    /// Reports from different runs, or none.
    case cannotMerge(String)
    /// The report could not be encoded (e.g. a NaN sample).
    case encodingFailed(String)
    /// A marked line whose JSON could not be decoded.
    case badMarkedLine(lineNumber: Int, reason: String)

    public var description: String {
        switch self {
        case let .wrongSchema(schema):
            return "not a harness report: schema is \"\(schema)\", expected \"\(Harness.reportSchemaName)\""
        case let .unsupportedSchemaVersion(version):
            return "unsupported schema_version \(version) (this harness reads \(Harness.reportSchemaVersion))"
        case let .invalid(problems):
            return "invalid report: " + problems.joined(separator: "; ")
        case let .cannotMerge(reason):
            return "cannot merge reports: \(reason)"
        case let .encodingFailed(reason):
            return "cannot encode report: \(reason)"
        case let .badMarkedLine(lineNumber, reason):
            return "line \(lineNumber): bad \(Harness.reportMarker) line: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
