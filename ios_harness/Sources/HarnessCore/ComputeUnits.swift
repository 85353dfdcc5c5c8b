import Foundation

/// The Core ML compute units a model may use, as written in run configurations and reports.
///
/// The raw values are the JSON spelling; `HarnessCoreML` maps each case to `MLComputeUnits`.
public enum ComputeUnits: String, Codable, CaseIterable, Sendable {
    /// `MLComputeUnits.all`: CPU, GPU and Neural Engine, as Core ML chooses.
    case all = "all"
    /// `MLComputeUnits.cpuOnly`.
    case cpuOnly = "cpu_only"
    /// `MLComputeUnits.cpuAndGPU`.
    case cpuAndGPU = "cpu_and_gpu"
    /// `MLComputeUnits.cpuAndNeuralEngine` (iOS 16 / macOS 13).
    case cpuAndNeuralEngine = "cpu_and_ne"

    /// The accepted spellings, for error messages and usage text: `all, cpu_only, ...`.
    public static var acceptedValues: String {
        allCases.map(\.rawValue).joined(separator: ", ")
    }
}
