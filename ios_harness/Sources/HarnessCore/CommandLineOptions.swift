import Foundation

/// Arguments of the macOS runner `mobileone-harness`, parsed from `CommandLine.arguments`
/// without any dependency. Lives in the core so that it is tested on every platform.
public struct CommandLineOptions: Equatable {
    /// `--models`: `.mlmodelc`, `.mlpackage` or `.mlmodel` paths, or directories holding them.
    public var modelPaths: [String] = []
    /// `--config`: a run-configuration JSON file.
    public var configPath: String?
    /// `--warmup N`: overrides the configuration.
    public var warmup: Int?
    /// `--runs N`: overrides the configuration.
    public var runs: Int?
    /// `--compute-units all|cpu_only|cpu_and_gpu|cpu_and_ne`: overrides the configuration.
    public var computeUnits: ComputeUnits?
    /// `--tag TEXT`: overrides the configuration.
    public var tag: String?
    /// `--out FILE`: where to write the whole report (pretty-printed JSON).
    public var outputPath: String?
    /// `--quiet`: no progress on stderr.
    public var quiet = false
    /// `--help`.
    public var showHelp = false
    /// `--version`.
    public var showVersion = false

    public init() {}

    /// The usage text printed by `--help`.
    public static let usage = """
    usage: mobileone-harness --models PATH [PATH ...] [options]

    Benchmarks Core ML models with the MobileOne protocol: load, preallocate the input, run once,
    run WARMUP more times untimed (none by default), then time RUNS predictions one by one
    (monotonic clock, on a dedicated high-priority thread).
    Prints one line per model on stdout: MOBILEONE_BENCH_REPORT <report JSON>.

    options:
      --models PATH...        .mlmodelc, .mlpackage or .mlmodel files, or directories holding
                              them (not searched recursively); packages are compiled first
      --config FILE           run-configuration JSON (keys: warmup, runs, compute_units,
                              models, tag); command-line options override it
      --warmup N              untimed predictions after the first run (default 0)
      --runs N                timed predictions per model (default 1000)
      --compute-units UNITS   all | cpu_only | cpu_and_gpu | cpu_and_ne (default all)
      --tag TEXT              label copied into the report
      --out FILE              also write the whole report (all models) to FILE
      --quiet                 no progress messages on stderr
      --version               print the harness version
      -h, --help              print this help

    exit status: 0 all models ok, 1 some model failed (see its error), 2 usage or
    configuration error, 3 the report could not be written.
    """

    /// Parses arguments (without the program name). `--name=value` works for every option that
    /// takes a value.
    ///
    /// - Throws: ``CommandLineError``.
    public static func parse(_ arguments: [String]) throws -> CommandLineOptions {
        var options = CommandLineOptions()
        var index = 0

        /// The value of the option at `index`: inline (`--runs=5`) or the next argument.
        func value(of option: String, inline: String?) throws -> String {
            if let inline {
                return inline
            }
            guard index + 1 < arguments.count, !arguments[index + 1].hasPrefix("--") else {
                throw CommandLineError.missingValue(option: option)
            }
            index += 1
            return arguments[index]
        }

        func integer(of option: String, inline: String?) throws -> Int {
            let text = try value(of: option, inline: inline)
            guard let number = Int(text) else {
                throw CommandLineError.invalidValue(option: option, value: text, reason: "expected an integer")
            }
            return number
        }

        func flag(_ option: String, inline: String?) throws -> Bool {
            if let inline {
                throw CommandLineError.invalidValue(option: option, value: inline, reason: "takes no value")
            }
            return true
        }

        while index < arguments.count {
            let argument = arguments[index]
            let (option, inline) = splitOption(argument)
            switch option {
            case "-h", "--help":
                options.showHelp = try flag(option, inline: inline)
            case "--version":
                options.showVersion = try flag(option, inline: inline)
            case "--quiet", "-q":
                options.quiet = try flag(option, inline: inline)
            case "--models":
                if let inline {
                    options.modelPaths.append(inline)
                } else {
                    var taken = 0
                    // Paths end at the next option, long or short (`--runs`, `-q`); a path
                    // that starts with `-` can be given as `--models=-odd.mlmodelc` or `./-odd.mlmodelc`.
                    while index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") {
                        index += 1
                        options.modelPaths.append(arguments[index])
                        taken += 1
                    }
                    if taken == 0 {
                        throw CommandLineError.missingValue(option: option)
                    }
                }
            case "--config":
                options.configPath = try value(of: option, inline: inline)
            case "--warmup":
                options.warmup = try integer(of: option, inline: inline)
            case "--runs":
                options.runs = try integer(of: option, inline: inline)
            case "--compute-units":
                let text = try value(of: option, inline: inline)
                guard let units = ComputeUnits(rawValue: text) else {
                    throw CommandLineError.invalidValue(
                        option: option, value: text, reason: "expected one of \(ComputeUnits.acceptedValues)")
                }
                options.computeUnits = units
            case "--tag":
                options.tag = try value(of: option, inline: inline)
            case "--out":
                options.outputPath = try value(of: option, inline: inline)
            default:
                if argument.hasPrefix("-") {
                    throw CommandLineError.unknownOption(argument)
                }
                throw CommandLineError.unexpectedArgument(argument)
            }
            index += 1
        }

        if !options.showHelp, !options.showVersion, options.modelPaths.isEmpty {
            throw CommandLineError.missingModels
        }
        return options
    }

    /// `base` with the command-line overrides applied, validated.
    ///
    /// - Throws: ``ConfigurationError`` when an override is out of range.
    public func configuration(overriding base: BenchmarkConfiguration) throws -> BenchmarkConfiguration {
        var configuration = base
        if let warmup { configuration.warmup = warmup }
        if let runs { configuration.runs = runs }
        if let computeUnits { configuration.computeUnits = computeUnits }
        if let tag { configuration.tag = tag }
        try configuration.validate()
        return configuration
    }

    /// `--name=value` -> (`--name`, `value`); anything else -> (argument, nil).
    static func splitOption(_ argument: String) -> (String, String?) {
        guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else {
            return (argument, nil)
        }
        return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
    }
}

/// What is wrong with the command line.
public enum CommandLineError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case unknownOption(String)
    case unexpectedArgument(String)
    case missingValue(option: String)
    case invalidValue(option: String, value: String, reason: String)
    case missingModels

    public var description: String {
        switch self {
        case let .unknownOption(option):
            return "unknown option \(option) (see --help)"
        case let .unexpectedArgument(argument):
            return "unexpected argument \(argument); model paths go after --models"
        case let .missingValue(option):
            return "\(option) needs a value"
        case let .invalidValue(option, value, reason):
            return "\(option) \(value): \(reason)"
        case .missingModels:
            return "no models given: pass --models PATH [PATH ...]"
        }
    }

    public var errorDescription: String? { description }
}
