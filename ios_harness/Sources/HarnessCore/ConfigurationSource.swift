import Foundation

/// Where the run configuration of an app or headless run came from.
public enum ConfigurationSource: Equatable, CustomStringConvertible, Sendable {
    /// The file named by `MOBILEONE_BENCH_CONFIG`.
    case environmentFile(path: String)
    /// Inline JSON in `MOBILEONE_BENCH_CONFIG`.
    case environmentInline
    /// `run_config.json` bundled with the app.
    case bundledFile(name: String)
    /// A file given on the command line (`--config`).
    case configFile(path: String)
    /// No configuration given: the defaults.
    case defaults

    public var description: String {
        switch self {
        case let .environmentFile(path):
            return "\(Harness.configEnvironmentVariable)=\(path)"
        case .environmentInline:
            return "inline JSON in \(Harness.configEnvironmentVariable)"
        case let .bundledFile(name):
            return "bundled \(name)"
        case let .configFile(path):
            return "--config \(path)"
        case .defaults:
            return "defaults (no run_config.json bundled)"
        }
    }
}

extension BenchmarkConfiguration {
    /// The configuration of a headless or app run, in order of precedence:
    ///
    /// 1. `MOBILEONE_BENCH_CONFIG` in `environment`: inline JSON when the value starts with `{`,
    ///    otherwise the path of a file (on a device, only paths inside the app's sandbox work;
    ///    `xcodebuild` passes `TEST_RUNNER_MOBILEONE_BENCH_CONFIG` to the test as
    ///    `MOBILEONE_BENCH_CONFIG`);
    /// 2. the bundled `run_config.json` (`bundledConfigURL`);
    /// 3. the defaults.
    ///
    /// - Throws: ``ConfigurationError`` when the chosen source is unreadable or invalid; a bad
    ///   configuration never falls back silently to the next source.
    public static func resolve(
        environment: [String: String],
        bundledConfigURL: URL?
    ) throws -> (configuration: BenchmarkConfiguration, source: ConfigurationSource) {
        let raw = (environment[Harness.configEnvironmentVariable] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if !raw.isEmpty {
            if raw.hasPrefix("{") {
                let configuration = try parse(Data(raw.utf8))
                return (configuration, ConfigurationSource.environmentInline)
            }
            let configuration = try load(from: URL(fileURLWithPath: raw))
            return (configuration, ConfigurationSource.environmentFile(path: raw))
        }
        if let bundledConfigURL {
            let configuration = try load(from: bundledConfigURL)
            return (configuration, ConfigurationSource.bundledFile(name: bundledConfigURL.lastPathComponent))
        }
        return (BenchmarkConfiguration(), ConfigurationSource.defaults)
    }
}
