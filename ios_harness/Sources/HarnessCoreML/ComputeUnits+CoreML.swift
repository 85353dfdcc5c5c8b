#if canImport(CoreML)
import CoreML
import Foundation
import HarnessCore

extension ComputeUnits {
    /// The `MLModelConfiguration.computeUnits` value for these compute units.
    ///
    /// `.cpuAndNeuralEngine` needs iOS 16 / macOS 13, the package's minimum platforms.
    public var mlComputeUnits: MLComputeUnits {
        switch self {
        case .all:
            return .all
        case .cpuOnly:
            return .cpuOnly
        case .cpuAndGPU:
            return .cpuAndGPU
        case .cpuAndNeuralEngine:
            return .cpuAndNeuralEngine
        }
    }
}

/// Error text for Core ML and Foundation errors: the message, then `[domain code]`, on one line.
/// Swift errors (the harness's own) keep their description.
public enum CoreMLErrorText {
    public static func describe(_ error: Error) -> String {
        // A metatype test does not bridge: it is true only for real NSError objects, which is
        // what Core ML and Foundation throw.
        guard type(of: error) is NSError.Type else {
            return ErrorText.describe(error)
        }
        let nsError = error as NSError
        return ErrorText.oneLine("\(nsError.localizedDescription) [\(nsError.domain) \(nsError.code)]")
    }
}
#endif
