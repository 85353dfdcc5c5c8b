import Foundation

/// Constants shared by every part of the harness and by the report schema
/// (`mobileone_bench/data/harness_report.schema.json`).
public enum Harness {
    /// Semantic version of the harness, written to the report's `harness_version`.
    public static let version = "0.2.0"

    /// Value of the report's `schema` field.
    public static let reportSchemaName = "mobileone-bench/harness-report"

    /// Value of the report's `schema_version` field. Bump it on any incompatible change of the
    /// report, together with the JSON Schema's `$id` and `const`.
    public static let reportSchemaVersion = 1

    /// Marker that starts the single stdout line carrying a report: the marker, one space, then
    /// the report as compact one-line JSON. The Python CLI finds these lines in `xcodebuild test`
    /// output.
    public static let reportMarker = "MOBILEONE_BENCH_REPORT"

    /// Identifier of the monotonic clock used by ``UptimeClock``, written to each result's `clock`.
    public static let clockIdentifier = "monotonic-uptime-ns"

    /// Environment variable read by the headless test: a path to a run-configuration file, or the
    /// configuration itself as inline JSON (a value starting with `{`).
    public static let configEnvironmentVariable = "MOBILEONE_BENCH_CONFIG"

    /// Resource name of the run configuration bundled with the app (`App/run_config.json`).
    public static let bundledConfigResourceName = "run_config"

    /// Prefix of human-readable log lines printed by the headless test and the macOS runner.
    public static let logPrefix = "[mobileone-bench]"
}
