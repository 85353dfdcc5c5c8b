import Foundation

/// How to benchmark: the run configuration.
///
/// Read from a run-configuration JSON file (`run_config.json`) whose keys are all optional:
///
/// ```json
/// {"warmup": 0, "runs": 1000, "compute_units": "all", "models": ["mobileone_s0"], "tag": "table9"}
/// ```
///
/// Missing keys take the defaults below; unknown keys are rejected so that a typo such as
/// `"run": 100` does not silently fall back to 1000 runs. The same object, with every key present,
/// is echoed as `config` in each report (schema: `$defs/run_config` and `$defs/config`).
public struct BenchmarkConfiguration: Codable, Equatable, Sendable {
    /// Default number of untimed predictions between the first run and the timed runs: none. The
    /// paper runs the model once, then times 1000 runs; the first run is that single warm-up
    /// (timed on its own as `first_run_ms`, never a sample).
    public static let defaultWarmup = 0
    /// Default number of timed predictions (the MobileOne paper's 1000).
    public static let defaultRuns = 1000
    /// Largest accepted `warmup`.
    public static let maximumWarmup = 100_000
    /// Largest accepted `runs`.
    public static let maximumRuns = 1_000_000
    /// Longest accepted `tag`, in characters.
    public static let maximumTagLength = 200

    /// Untimed predictions after the (timed) first run and before the timed runs. At least 0.
    public var warmup: Int
    /// Timed predictions per model; each one is a sample. At least 1.
    public var runs: Int
    /// Core ML compute units for every model of the run.
    public var computeUnits: ComputeUnits
    /// Models to run, as names (`mobileone_s0`) or file names (`mobileone_s0.mlmodelc`);
    /// empty means every bundled or given model. See ``ModelSelection``.
    public var models: [String]
    /// Free-form label copied into the report, or nil.
    public var tag: String?

    /// Creates a configuration. Call ``validate()`` before using values that did not come from
    /// ``parse(_:)`` or ``load(from:)``, which validate already.
    public init(
        warmup: Int = BenchmarkConfiguration.defaultWarmup,
        runs: Int = BenchmarkConfiguration.defaultRuns,
        computeUnits: ComputeUnits = .all,
        models: [String] = [],
        tag: String? = nil
    ) {
        self.warmup = warmup
        self.runs = runs
        self.computeUnits = computeUnits
        self.models = models
        self.tag = tag
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case warmup
        case runs
        case computeUnits = "compute_units"
        case models
        case tag
    }

    /// Decodes leniently (absent keys take defaults, `null` means absent) but strictly about
    /// unknown keys and values, then validates.
    ///
    /// - Throws: ``ConfigurationError`` for unknown keys and invalid values; `DecodingError` for
    ///   values of the wrong JSON type (``parse(_:)`` turns those into ``ConfigurationError``).
    public init(from decoder: Decoder) throws {
        let unknown = try decoder.unknownKeys(comparedTo: CodingKeys.self)
        guard unknown.isEmpty else {
            throw ConfigurationError.unknownKeys(unknown)
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        warmup = try Self.decodeInteger(container, .warmup) ?? Self.defaultWarmup
        runs = try Self.decodeInteger(container, .runs) ?? Self.defaultRuns
        if let raw = try container.decodeIfPresent(String.self, forKey: .computeUnits) {
            guard let units = ComputeUnits(rawValue: raw) else {
                throw ConfigurationError.invalidValue(
                    key: CodingKeys.computeUnits.rawValue,
                    message: "\"\(raw)\" is not one of \(ComputeUnits.acceptedValues)"
                )
            }
            computeUnits = units
        } else {
            computeUnits = .all
        }
        models = try container.decodeIfPresent([String].self, forKey: .models) ?? []
        tag = try container.decodeIfPresent(String.self, forKey: .tag)
        try validate()
    }

    /// An integer key, or nil when absent or null. Any other value is
    /// ``ConfigurationError/wrongType(key:expected:)``: swift-foundation on Linux throws an
    /// internal error for a fraction such as `1.5` (which `JSONDecoder` turns into corrupted data
    /// without a key), Darwin a type mismatch naming the key.
    private static func decodeInteger(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        do {
            return try container.decodeIfPresent(Int.self, forKey: key)
        } catch {
            throw ConfigurationError.wrongType(key: key.rawValue, expected: "an integer")
        }
    }

    /// Encodes every key, `tag` as `null` when absent (the report schema requires all keys).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(warmup, forKey: .warmup)
        try container.encode(runs, forKey: .runs)
        try container.encode(computeUnits, forKey: .computeUnits)
        try container.encode(models, forKey: .models)
        try container.encodeOrNull(tag, forKey: .tag)
    }

    /// Checks every value against the limits of the schema.
    ///
    /// - Throws: ``ConfigurationError/invalidValue(key:message:)`` naming the first bad key.
    public func validate() throws {
        guard warmup >= 0 else {
            throw ConfigurationError.invalidValue(key: "warmup", message: "must be >= 0 (got \(warmup))")
        }
        guard warmup <= Self.maximumWarmup else {
            throw ConfigurationError.invalidValue(
                key: "warmup", message: "must be <= \(Self.maximumWarmup) (got \(warmup))")
        }
        guard runs >= 1 else {
            throw ConfigurationError.invalidValue(key: "runs", message: "must be >= 1 (got \(runs))")
        }
        guard runs <= Self.maximumRuns else {
            throw ConfigurationError.invalidValue(
                key: "runs", message: "must be <= \(Self.maximumRuns) (got \(runs))")
        }
        for (index, entry) in models.enumerated() {
            if entry.isEmpty {
                throw ConfigurationError.invalidValue(key: "models", message: "entry \(index) is empty")
            }
            if entry.contains("/") || entry.contains("\\") {
                throw ConfigurationError.invalidValue(
                    key: "models",
                    message: "entry \(index) (\"\(entry)\") must be a model name or file name, not a path"
                )
            }
        }
        if let tag, tag.count > Self.maximumTagLength {
            throw ConfigurationError.invalidValue(
                key: "tag", message: "must be at most \(Self.maximumTagLength) characters (got \(tag.count))")
        }
    }

    /// Parses and validates a run configuration from JSON data.
    ///
    /// - Throws: ``ConfigurationError`` saying what is wrong and with which key.
    public static func parse(_ data: Data) throws -> BenchmarkConfiguration {
        do {
            return try JSONDecoder().decode(BenchmarkConfiguration.self, from: data)
        } catch let error as ConfigurationError {
            throw error
        } catch let error as DecodingError {
            throw ConfigurationError(decodingError: error)
        }
    }

    /// Reads, parses and validates a run-configuration file.
    ///
    /// - Throws: ``ConfigurationError/unreadable(path:reason:)`` when the file cannot be read,
    ///   otherwise as ``parse(_:)``.
    public static func load(from url: URL) throws -> BenchmarkConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ConfigurationError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        return try parse(data)
    }

    /// One-line description for logs: `warmup 0, runs 1000, compute units all, models all, tag -`.
    public var summaryText: String {
        let modelText = models.isEmpty ? "all" : models.joined(separator: ", ")
        return "warmup \(warmup), runs \(runs), compute units \(computeUnits.rawValue), "
            + "models \(modelText), tag \(tag ?? "-")"
    }
}

/// What is wrong with a run configuration.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The data is not a JSON object.
    case malformedJSON(reason: String)
    /// The object has keys the harness does not know (often a typo).
    case unknownKeys([String])
    /// A key has a value of the wrong JSON type.
    case wrongType(key: String, expected: String)
    /// A key has a value of the right type but outside what is allowed.
    case invalidValue(key: String, message: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read run configuration \(path): \(reason)"
        case let .malformedJSON(reason):
            return "run configuration is not a valid JSON object: \(reason)"
        case let .unknownKeys(keys):
            let allowed = BenchmarkConfiguration.CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")
            return "run configuration has unknown key(s) \(keys.joined(separator: ", ")); allowed keys: \(allowed)"
        case let .wrongType(key, expected):
            return "run configuration: \(key) must be \(expected)"
        case let .invalidValue(key, message):
            return "run configuration: \(key) \(message)"
        }
    }

    public var errorDescription: String? { description }

    /// Turns a decoding error into a message that names the key and the expected type.
    init(decodingError: DecodingError) {
        let context: DecodingError.Context?
        switch decodingError {
        case let .typeMismatch(_, ctx), let .valueNotFound(_, ctx), let .dataCorrupted(ctx):
            context = ctx
        case let .keyNotFound(_, ctx):
            context = ctx
        @unknown default:
            context = nil
        }
        guard let context, let first = context.codingPath.first else {
            let reason = context.map(Self.reason(of:)) ?? String(describing: decodingError)
            self = .malformedJSON(reason: reason)
            return
        }
        let key = first.stringValue
        switch BenchmarkConfiguration.CodingKeys(rawValue: key) {
        case .warmup?, .runs?:
            self = .wrongType(key: key, expected: "an integer")
        case .computeUnits?:
            self = .wrongType(key: key, expected: "a string, one of \(ComputeUnits.acceptedValues)")
        case .models?:
            self = .wrongType(key: key, expected: "an array of strings")
        case .tag?:
            self = .wrongType(key: key, expected: "a string or null")
        case nil:
            self = .malformedJSON(reason: Self.reason(of: context))
        }
    }

    private static func reason(of context: DecodingError.Context) -> String {
        if let underlying = context.underlyingError {
            return "\(context.debugDescription) (\(underlying.localizedDescription))"
        }
        return context.debugDescription
    }
}
