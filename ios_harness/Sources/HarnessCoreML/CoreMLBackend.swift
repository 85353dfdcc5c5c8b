#if canImport(CoreML)
import CoreML
import CoreVideo
import Foundation
import HarnessCore

/// The Core ML backend: a thin adapter from ``BenchmarkBackend`` to Core ML. Every decision
/// (which models, which shapes and types, the protocol, the session) is made in HarnessCore.
public struct CoreMLBackend: BenchmarkBackend {
    public init() {}

    /// `.mlmodelc` as it is; `.mlpackage` / `.mlmodel` through `MLModel.compileModel(at:)` into a
    /// temporary `.mlmodelc` that ``discard(_:)`` removes.
    public func compile(_ location: ModelLocation) async throws -> CompiledModel {
        guard location.format != .compiled else { return .asIs(location) }
        let url = try await MLModel.compileModel(at: location.url)
        return CompiledModel(location: location, url: url, isTemporary: true)
    }

    /// `MLModel(contentsOf:configuration:)` with `MLModelConfiguration.computeUnits`.
    public func load(_ compiled: CompiledModel, computeUnits: ComputeUnits) throws -> MLModel {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits.mlComputeUnits
        return try MLModel(contentsOf: compiled.url, configuration: configuration)
    }

    /// `modelDescription.inputDescriptionsByName`, copied into plain values.
    public func inputFeatures(of model: MLModel) throws -> [InputFeature] {
        model.modelDescription.inputDescriptionsByName.map { name, feature in
            InputFeature(name: name, isOptional: feature.isOptional, kind: Self.kind(of: feature))
        }
    }

    /// One `MLMultiArray` or IOSurface-backed `CVPixelBuffer` per planned input, filled by the
    /// plan, wrapped once in an `MLDictionaryFeatureProvider`.
    public func makeInput(_ plan: [InputPlan], for model: MLModel) throws -> MLDictionaryFeatureProvider {
        var values: [String: MLFeatureValue] = [:]
        for input in plan {
            switch input {
            case let .multiArray(name, shape, elementType, _):
                let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: Self.dataType(elementType, name: name))
                array.withUnsafeMutableBytes { buffer, _ in input.fill(buffer) }
                values[name] = MLFeatureValue(multiArray: array)
            case let .image(name, width, height, pixelFormat, _):
                values[name] = MLFeatureValue(pixelBuffer: try Self.pixelBuffer(input, name: name, width: width, height: height, format: pixelFormat))
            }
        }
        return try MLDictionaryFeatureProvider(dictionary: values)
    }

    /// One `MLModel.prediction(from:)` inside an autorelease pool, so that 1000 outputs do not
    /// pile up in memory.
    public func predict(_ model: MLModel, _ input: MLDictionaryFeatureProvider) throws {
        try autoreleasepool {
            _ = try model.prediction(from: input)
        }
    }

    public func describe(_ error: Error) -> String {
        CoreMLErrorText.describe(error)
    }

    /// `MLComputePlan.load(contentsOf:configuration:)` with the run's compute units: where Core ML
    /// would run each operation and its estimated cost (``ComputePlanReader``). Unavailable before
    /// iOS 17.4 / macOS 14.4.
    public func computePlan(_ compiled: CompiledModel, computeUnits: ComputeUnits) async -> ComputePlanOutcome {
        guard #available(iOS 17.4, macOS 14.4, *) else {
            return .unavailable(ComputePlanReport.olderOSMessage)
        }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits.mlComputeUnits
        do {
            let plan = try await MLComputePlan.load(contentsOf: compiled.url, configuration: configuration)
            return ComputePlanReader.outcome(of: plan)
        } catch {
            return .failed(CoreMLErrorText.describe(error))
        }
    }

    static func kind(of feature: MLFeatureDescription) -> InputFeature.Kind {
        switch feature.type {
        case .multiArray:
            return .multiArray(feature.multiArrayConstraint.map { constraint in
                InputFeature.MultiArrayConstraint(
                    shape: constraint.shape.map(\.intValue),
                    dataTypeRawValue: constraint.dataType.rawValue,
                    enumeratedShapes: constraint.shapeConstraint.enumeratedShapes.map { $0.map(\.intValue) },
                    rangeLowerBounds: constraint.shapeConstraint.sizeRangeForDimension.map { $0.rangeValue.location }
                )
            })
        case .image:
            return .image(feature.imageConstraint.map {
                InputFeature.ImageConstraint(pixelsWide: $0.pixelsWide, pixelsHigh: $0.pixelsHigh, pixelFormat: $0.pixelFormatType)
            })
        default:
            return .other(typeName: typeName(feature.type))
        }
    }

    /// The `MLMultiArrayDataType` of an element type. `int8` (raw value `0x20008`) exists from
    /// iOS 26 / macOS 26 only: before, no model has such an input, and asking for one is an error
    /// (never a silent `int32`, whose elements are four times as wide).
    static func dataType(_ type: MultiArrayElementType, name: String) throws -> MLMultiArrayDataType {
        switch type {
        case .float16: return .float16
        case .float32: return .float32
        case .float64: return .double
        case .int32: return .int32
        case .int8:
            // By raw value: the `.int8` name is only in the iOS 26 / macOS 26 SDKs. An imported
            // Objective-C enum keeps any raw value, so this `init?(rawValue:)` never returns nil.
            guard #available(iOS 26.0, macOS 26.0, *), let int8 = MLMultiArrayDataType(rawValue: 0x20000 | 8) else {
                throw InputPreparationError.unsupportedElementType(name: name, rawValue: 0x20000 | 8)
            }
            return int8
        }
    }

    static func pixelBuffer(_ input: InputPlan, name: String, width: Int, height: Int, format: OSType) throws -> CVPixelBuffer {
        let attributes: [String: Any] = [kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any]()]
        var created: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, format, attributes as CFDictionary, &created)
        guard status == kCVReturnSuccess, let buffer = created else {
            throw InputPreparationError.allocationFailed(name: name, reason: "CVPixelBufferCreate failed with status \(status)")
        }
        let lock = CVPixelBufferLockBaseAddress(buffer, [])
        guard lock == kCVReturnSuccess else {
            throw InputPreparationError.allocationFailed(name: name, reason: "CVPixelBufferLockBaseAddress failed with status \(lock)")
        }
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        func fill(_ base: UnsafeMutableRawPointer?, bytes: Int, plane: Int) {
            guard let base, bytes > 0 else { return }
            input.fill(UnsafeMutableRawBufferPointer(start: base, count: bytes), plane: plane)
        }
        let planes = CVPixelBufferGetPlaneCount(buffer)
        if planes == 0 {
            fill(CVPixelBufferGetBaseAddress(buffer), bytes: CVPixelBufferGetBytesPerRow(buffer) * CVPixelBufferGetHeight(buffer), plane: 0)
        }
        for plane in 0..<planes {
            fill(CVPixelBufferGetBaseAddressOfPlane(buffer, plane),
                 bytes: CVPixelBufferGetBytesPerRowOfPlane(buffer, plane) * CVPixelBufferGetHeightOfPlane(buffer, plane),
                 plane: plane)
        }
        return buffer
    }

    static func typeName(_ type: MLFeatureType) -> String {
        switch type {
        case .int64: return "int64"
        case .double: return "double"
        case .string: return "string"
        case .image: return "image"
        case .multiArray: return "multiarray"
        case .dictionary: return "dictionary"
        case .sequence: return "sequence"
        case .invalid: return "invalid"
        default: return "feature type \(type.rawValue)"
        }
    }
}

extension BenchmarkSession where Backend == CoreMLBackend {
    /// The app's session: the models and `run_config.json` bundled in `bundle`, or
    /// `MOBILEONE_BENCH_CONFIG` (see ``BenchmarkSession/bundled(backend:resourceURL:environment:device:)``).
    public static func bundled(
        bundle: Bundle = .main,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> BenchmarkSession<CoreMLBackend> {
        try bundled(backend: CoreMLBackend(), resourceURL: bundle.resourceURL, environment: environment)
    }
}
#endif
