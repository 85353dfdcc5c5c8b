#if canImport(CoreML)
import CoreML
import Foundation
import HarnessCore

/// An `MLComputePlan` read into plain values: every operation of an ML program (nested blocks
/// included, functions in name order), every layer of a neural network, every sub-model of a
/// pipeline, with its preferred and supported compute devices and its estimated cost.
@available(iOS 17.4, macOS 14.4, *)
public enum ComputePlanReader {
    public static func outcome(of plan: MLComputePlan) -> ComputePlanOutcome {
        var operations: [ComputePlanOperation] = []
        let structure = read(plan.modelStructure, plan: plan, prefix: "", into: &operations)
        return .plan(structure: structure, operations: operations)
    }

    /// Appends the operations of `structure`; returns its kind (`program`, `neuralNetwork`,
    /// `pipeline`, `unsupported`).
    static func read(_ structure: MLModelStructure, plan: MLComputePlan, prefix: String,
                     into operations: inout [ComputePlanOperation]) -> String {
        switch structure {
        case let .program(program):
            for name in program.functions.keys.sorted() {
                guard let function = program.functions[name] else { continue }
                read(function.block, function: prefix + name, plan: plan, into: &operations)
            }
            return "program"
        case let .neuralNetwork(network):
            for layer in network.layers {
                let usage = plan.deviceUsage(for: layer)
                operations.append(ComputePlanOperation(
                    function: prefix.isEmpty ? nil : prefix, name: layer.name, operatorName: layer.type,
                    preferred: usage.map { name(of: $0.preferred) }, supported: usage?.supported.map(name(of:)) ?? [],
                    cost: nil))
            }
            return "neuralNetwork"
        case let .pipeline(pipeline):
            for (index, model) in pipeline.subModels.enumerated() {
                let label = index < pipeline.subModelNames.count ? pipeline.subModelNames[index] : "\(index)"
                _ = read(model, plan: plan, prefix: "\(prefix)\(label)/", into: &operations)
            }
            return "pipeline"
        case .unsupported:
            return "unsupported"
        @unknown default:
            return "unsupported"
        }
    }

    static func read(_ block: MLModelStructure.Program.Block, function: String, plan: MLComputePlan,
                     into operations: inout [ComputePlanOperation]) {
        for operation in block.operations {
            let usage = plan.deviceUsage(for: operation)
            operations.append(ComputePlanOperation(
                function: function, name: operation.outputs.first?.name ?? operation.operatorName,
                operatorName: operation.operatorName, preferred: usage.map { name(of: $0.preferred) },
                supported: usage?.supported.map(name(of:)) ?? [], cost: plan.estimatedCost(of: operation)?.weight))
            for inner in operation.blocks {
                read(inner, function: function, plan: plan, into: &operations)
            }
        }
    }

    /// `cpu`, `gpu` or `neural_engine` (``ComputePlanDevice``).
    static func name(of device: MLComputeDevice) -> String {
        switch device {
        case .cpu: return ComputePlanDevice.cpu.rawValue
        case .gpu: return ComputePlanDevice.gpu.rawValue
        case .neuralEngine: return ComputePlanDevice.neuralEngine.rawValue
        @unknown default: return "other"
        }
    }
}
#endif
