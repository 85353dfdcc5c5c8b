// Stand-ins for the Core ML API the adapter uses (type-check only, never run). Each declaration
// follows the Apple documentation page named above it (https://developer.apple.com/documentation/coreml/...)
// in its Swift shape: names, labels, optionality, throws/async and availability.
//
// Objective-C enums (NS_ENUM) are modelled as the Swift importer makes them: a RawRepresentable
// type whose `init(rawValue:)` is failable in its signature but keeps any raw value (the real
// import never returns nil for an unknown value), with one static member per documented case.
// Swift-only types of the Core ML overlay (MLComputeDevice, MLModelStructure, MLComputePlan's
// nested types) are Swift enums and structs, as documented.
import Foundation
@_exported import CoreVideo

/// https://developer.apple.com/documentation/coreml/mlcomputeunits (NS_ENUM, NSInteger)
public struct MLComputeUnits: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: Int
    public init?(rawValue: Int) { self.rawValue = rawValue }
    private init(_ value: Int) { rawValue = value }
    /// .../mlcomputeunits/cpuonly
    public static let cpuOnly = MLComputeUnits(0)
    /// .../mlcomputeunits/cpuandgpu
    public static let cpuAndGPU = MLComputeUnits(1)
    /// .../mlcomputeunits/all
    public static let all = MLComputeUnits(2)
    /// .../mlcomputeunits/cpuandneuralengine
    @available(macOS 13.0, iOS 16.0, *)
    public static let cpuAndNeuralEngine = MLComputeUnits(3)
}

/// https://developer.apple.com/documentation/coreml/mlfeaturetype (NS_ENUM, NSInteger)
public struct MLFeatureType: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: Int
    public init?(rawValue: Int) { self.rawValue = rawValue }
    private init(_ value: Int) { rawValue = value }
    public static let invalid = MLFeatureType(0)
    public static let int64 = MLFeatureType(1)
    public static let double = MLFeatureType(2)
    public static let string = MLFeatureType(3)
    public static let image = MLFeatureType(4)
    public static let multiArray = MLFeatureType(5)
    public static let dictionary = MLFeatureType(6)
    /// .../mlfeaturetype/sequence
    public static let sequence = MLFeatureType(7)
    /// .../mlfeaturetype/state
    @available(macOS 15.0, iOS 18.0, *)
    public static let state = MLFeatureType(8)
}

/// https://developer.apple.com/documentation/coreml/mlmultiarraydatatype (NS_ENUM, NSInteger):
/// 0x10000 | bits for floating point, 0x20000 | bits for integers.
public struct MLMultiArrayDataType: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: Int
    public init?(rawValue: Int) { self.rawValue = rawValue }
    private init(_ value: Int) { rawValue = value }
    /// .../mlmultiarraydatatype/double
    public static let double = MLMultiArrayDataType(0x10000 | 64)
    /// .../mlmultiarraydatatype/float64 (the same value as double)
    public static let float64 = MLMultiArrayDataType(0x10000 | 64)
    /// .../mlmultiarraydatatype/float32
    public static let float32 = MLMultiArrayDataType(0x10000 | 32)
    /// .../mlmultiarraydatatype/float16
    @available(macOS 12.0, iOS 16.0, *)
    public static let float16 = MLMultiArrayDataType(0x10000 | 16)
    /// .../mlmultiarraydatatype/float (the same value as float32)
    public static let float = MLMultiArrayDataType(0x10000 | 32)
    /// .../mlmultiarraydatatype/int32
    public static let int32 = MLMultiArrayDataType(0x20000 | 32)
    /// .../mlmultiarraydatatype/int8
    @available(macOS 26.0, iOS 26.0, *)
    public static let int8 = MLMultiArrayDataType(0x20000 | 8)
}

/// https://developer.apple.com/documentation/coreml/mlmultiarrayshapeconstrainttype (NS_ENUM, NSInteger)
public struct MLMultiArrayShapeConstraintType: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: Int
    public init?(rawValue: Int) { self.rawValue = rawValue }
    private init(_ value: Int) { rawValue = value }
    public static let unspecified = MLMultiArrayShapeConstraintType(1)
    public static let enumerated = MLMultiArrayShapeConstraintType(2)
    public static let range = MLMultiArrayShapeConstraintType(3)
}

/// https://developer.apple.com/documentation/coreml/mlmodelconfiguration
open class MLModelConfiguration: NSObject {
    /// .../mlmodelconfiguration/computeunits
    open var computeUnits: MLComputeUnits = .all
    public override init() {}
}

/// https://developer.apple.com/documentation/coreml/mlmultiarrayshapeconstraint
open class MLMultiArrayShapeConstraint: NSObject {
    /// .../mlmultiarrayshapeconstraint/type
    open var type: MLMultiArrayShapeConstraintType { .unspecified }
    /// .../mlmultiarrayshapeconstraint/sizerangefordimension
    open var sizeRangeForDimension: [NSValue] { [] }
    /// .../mlmultiarrayshapeconstraint/enumeratedshapes
    open var enumeratedShapes: [[NSNumber]] { [] }
}

/// https://developer.apple.com/documentation/coreml/mlmultiarrayconstraint
open class MLMultiArrayConstraint: NSObject {
    /// .../mlmultiarrayconstraint/shape
    open var shape: [NSNumber] { [] }
    /// .../mlmultiarrayconstraint/datatype
    open var dataType: MLMultiArrayDataType { .float32 }
    /// .../mlmultiarrayconstraint/shapeconstraint
    open var shapeConstraint: MLMultiArrayShapeConstraint { MLMultiArrayShapeConstraint() }
}

/// https://developer.apple.com/documentation/coreml/mlimageconstraint
open class MLImageConstraint: NSObject {
    /// .../mlimageconstraint/pixelswide
    open var pixelsWide: Int { 0 }
    /// .../mlimageconstraint/pixelshigh
    open var pixelsHigh: Int { 0 }
    /// .../mlimageconstraint/pixelformattype
    open var pixelFormatType: OSType { 0 }
}

/// https://developer.apple.com/documentation/coreml/mlfeaturedescription
open class MLFeatureDescription: NSObject {
    /// .../mlfeaturedescription/name
    open var name: String { "" }
    /// .../mlfeaturedescription/type
    open var type: MLFeatureType { .invalid }
    /// .../mlfeaturedescription/isoptional
    open var isOptional: Bool { false }
    /// .../mlfeaturedescription/multiarrayconstraint
    open var multiArrayConstraint: MLMultiArrayConstraint? { nil }
    /// .../mlfeaturedescription/imageconstraint
    open var imageConstraint: MLImageConstraint? { nil }
}

/// https://developer.apple.com/documentation/coreml/mlmodeldescription
open class MLModelDescription: NSObject {
    /// .../mlmodeldescription/inputdescriptionsbyname
    open var inputDescriptionsByName: [String: MLFeatureDescription] { [:] }
}

/// https://developer.apple.com/documentation/coreml/mlfeatureprovider
public protocol MLFeatureProvider {
    /// .../mlfeatureprovider/featurenames
    var featureNames: Set<String> { get }
    /// .../mlfeatureprovider/featurevalue(for:)
    func featureValue(for featureName: String) -> MLFeatureValue?
}

/// https://developer.apple.com/documentation/coreml/mldictionaryfeatureprovider
open class MLDictionaryFeatureProvider: NSObject, MLFeatureProvider {
    /// .../mldictionaryfeatureprovider/init(dictionary:)
    public init(dictionary: [String: Any]) throws {}
    open var featureNames: Set<String> { [] }
    open func featureValue(for featureName: String) -> MLFeatureValue? { nil }
}

/// https://developer.apple.com/documentation/coreml/mlfeaturevalue
open class MLFeatureValue: NSObject {
    /// .../mlfeaturevalue/init(multiarray:)
    public init(multiArray: MLMultiArray) {}
    /// .../mlfeaturevalue/init(pixelbuffer:)
    public init(pixelBuffer: CVPixelBuffer) {}
}

/// https://developer.apple.com/documentation/coreml/mlmultiarray
open class MLMultiArray: NSObject {
    /// .../mlmultiarray/init(shape:datatype:)
    public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws {}
    /// .../mlmultiarray/withunsafemutablebytes(_:) (the Swift overlay)
    @available(macOS 12.3, iOS 15.4, *)
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer, [Int]) throws -> R) rethrows -> R { fatalError() }
}

/// https://developer.apple.com/documentation/coreml/mlmodel
open class MLModel: NSObject {
    /// .../mlmodel/modeldescription
    open var modelDescription: MLModelDescription { MLModelDescription() }
    /// .../mlmodel/init(contentsof:configuration:)
    public init(contentsOf url: URL, configuration: MLModelConfiguration) throws {}
    /// .../mlmodel/prediction(from:)
    open func prediction(from input: MLFeatureProvider) throws -> MLFeatureProvider { fatalError() }
    /// .../mlmodel/compilemodel(at:)-6442s (the async form)
    @available(macOS 13.0, iOS 16.0, *)
    open class func compileModel(at modelURL: URL) async throws -> URL { modelURL }
}

// MARK: - Compute devices (https://developer.apple.com/documentation/coreml/mlcomputedevice)

/// https://developer.apple.com/documentation/coreml/mlcpucomputedevice
@available(macOS 14.0, iOS 17.0, *)
public final class MLCPUComputeDevice: NSObject, @unchecked Sendable {}
/// https://developer.apple.com/documentation/coreml/mlgpucomputedevice
@available(macOS 14.0, iOS 17.0, *)
public final class MLGPUComputeDevice: NSObject, @unchecked Sendable {}
/// https://developer.apple.com/documentation/coreml/mlneuralenginecomputedevice
@available(macOS 14.0, iOS 17.0, *)
public final class MLNeuralEngineComputeDevice: NSObject, @unchecked Sendable {}

/// https://developer.apple.com/documentation/coreml/mlcomputedevice (a Swift enum)
@available(macOS 14.0, iOS 17.0, *)
public enum MLComputeDevice: Sendable {
    /// .../mlcomputedevice/cpu(_:)
    case cpu(MLCPUComputeDevice)
    /// .../mlcomputedevice/gpu(_:)
    case gpu(MLGPUComputeDevice)
    /// .../mlcomputedevice/neuralengine(_:)
    case neuralEngine(MLNeuralEngineComputeDevice)
}

// MARK: - Model structure (https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum)

/// https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum
@available(macOS 14.4, iOS 17.4, *)
public enum MLModelStructure: Sendable {
    /// .../mlmodelstructure-swift.enum/unsupported
    case unsupported
    /// .../mlmodelstructure-swift.enum/neuralnetwork(_:)
    case neuralNetwork(NeuralNetwork)
    /// .../mlmodelstructure-swift.enum/program(_:)
    case program(Program)
    /// .../mlmodelstructure-swift.enum/pipeline(_:)
    case pipeline(Pipeline)

    /// .../mlmodelstructure-swift.enum/neuralnetwork
    public struct NeuralNetwork: Sendable {
        /// .../neuralnetwork/layers
        public let layers: [Layer]
        /// .../mlmodelstructure-swift.enum/neuralnetwork/layer
        public struct Layer: Sendable {
            /// .../layer/name
            public let name: String
            /// .../layer/type
            public let type: String
            /// .../layer/inputnames
            public let inputNames: [String]
            /// .../layer/outputnames
            public let outputNames: [String]
        }
    }

    /// .../mlmodelstructure-swift.enum/program
    public struct Program: Sendable {
        /// .../program/functions
        public let functions: [String: Function]
        /// .../mlmodelstructure-swift.enum/program/function
        public struct Function: Sendable {
            /// .../program/function/inputs
            public let inputs: [NamedValueType]
            /// .../program/function/block
            public let block: Block
        }
        /// .../mlmodelstructure-swift.enum/program/block
        public struct Block: Sendable {
            /// .../program/block/inputs
            public let inputs: [NamedValueType]
            /// .../program/block/outputnames
            public let outputNames: [String]
            /// .../program/block/operations
            public let operations: [Operation]
        }
        /// .../mlmodelstructure-swift.enum/program/operation
        public struct Operation: Sendable {
            /// .../program/operation/operatorname
            public let operatorName: String
            /// .../program/operation/inputs
            public let inputs: [String: Argument]
            /// .../program/operation/outputs
            public let outputs: [NamedValueType]
            /// .../program/operation/blocks
            public let blocks: [Block]
        }
        /// .../mlmodelstructure-swift.enum/program/argument
        public struct Argument: Sendable {
            /// .../program/argument/bindings
            public let bindings: [Binding]
        }
        /// .../mlmodelstructure-swift.enum/program/binding
        public enum Binding: Sendable {
            /// .../program/binding/name(_:)
            case name(String)
            /// .../program/binding/value(_:)
            case value(Value)
        }
        /// .../mlmodelstructure-swift.enum/program/value (opaque)
        public struct Value: Sendable {}
        /// .../mlmodelstructure-swift.enum/program/valuetype (opaque)
        public struct ValueType: Sendable {}
        /// .../mlmodelstructure-swift.enum/program/namedvaluetype
        public struct NamedValueType: Sendable {
            /// .../program/namedvaluetype/name
            public let name: String
            /// .../program/namedvaluetype/type
            public let type: ValueType
        }
    }

    /// .../mlmodelstructure-swift.enum/pipeline
    public struct Pipeline: Sendable {
        /// .../pipeline/submodelnames
        public let subModelNames: [String]
        /// .../pipeline/submodels
        public let subModels: [MLModelStructure]
    }
}

// MARK: - Compute plan (https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n)

/// https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n
@available(macOS 14.4, iOS 17.4, *)
public final class MLComputePlan: @unchecked Sendable {
    /// .../mlcomputeplan-1w21n/deviceusage
    public struct DeviceUsage: Sendable {
        /// .../mlcomputeplan-1w21n/deviceusage/preferred
        public let preferred: MLComputeDevice
        /// .../mlcomputeplan-1w21n/deviceusage/supported
        public let supported: [MLComputeDevice]
    }

    /// .../mlcomputeplan-1w21n/cost
    public struct Cost: Sendable {
        /// .../mlcomputeplan-1w21n/cost/weight: the operation's share of the model's work, 0...1
        public let weight: Double
    }

    /// .../mlcomputeplan-1w21n/modelstructure
    public let modelStructure: MLModelStructure = .unsupported

    private init() {}

    /// .../mlcomputeplan-1w21n/load(contentsof:configuration:)
    public static func load(contentsOf url: URL, configuration: MLModelConfiguration) async throws -> MLComputePlan { MLComputePlan() }

    /// .../mlcomputeplan-1w21n/deviceusage(for:)-7cdlm
    public func deviceUsage(for operation: MLModelStructure.Program.Operation) -> DeviceUsage? { nil }

    /// .../mlcomputeplan-1w21n/deviceusage(for:)-9em1q
    public func deviceUsage(for layer: MLModelStructure.NeuralNetwork.Layer) -> DeviceUsage? { nil }

    /// .../mlcomputeplan-1w21n/estimatedcost(of:)
    public func estimatedCost(of operation: MLModelStructure.Program.Operation) -> Cost? { nil }
}
