// Minimal stand-ins with the shapes of the Core ML API used by the adapter (type-check only).
import Foundation
@_exported import CoreVideo
public enum MLComputeUnits: Int { case cpuOnly, cpuAndGPU, all, cpuAndNeuralEngine }
public enum MLFeatureType: Int { case invalid, int64, double, string, image, multiArray, dictionary, sequence, state }
public enum MLMultiArrayDataType: Int { case double = 0x10040, float64x = 0x10041, float32 = 0x10020, float16 = 0x10010, int32 = 0x20020 }
public final class MLModelConfiguration { public var computeUnits: MLComputeUnits = .all; public init() {} }
public final class MLShapeConstraint { public var enumeratedShapes: [[NSNumber]] = []; public var sizeRangeForDimension: [NSValue] = [] }
public final class MLMultiArrayConstraint { public var shape: [NSNumber] = []; public var dataType: MLMultiArrayDataType = .float32; public var shapeConstraint = MLShapeConstraint() }
public final class MLImageConstraint { public var pixelsWide = 0; public var pixelsHigh = 0; public var pixelFormatType: OSType = 0 }
public final class MLFeatureDescription { public var type: MLFeatureType = .invalid; public var isOptional = false
  public var multiArrayConstraint: MLMultiArrayConstraint?; public var imageConstraint: MLImageConstraint? }
public final class MLModelDescription { public var inputDescriptionsByName: [String: MLFeatureDescription] = [:] }
public protocol MLFeatureProvider {}
public final class MLDictionaryFeatureProvider: MLFeatureProvider { public init(dictionary: [String: Any]) throws {} }
public final class MLFeatureValue { public init(multiArray: MLMultiArray) {}; public init(pixelBuffer: CVPixelBuffer) {} }
public final class MLMultiArray { public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws {}
  public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer, [Int]) throws -> R) rethrows -> R { fatalError() } }
public final class MLModel { public var modelDescription = MLModelDescription()
  public init(contentsOf url: URL, configuration: MLModelConfiguration) throws {}
  public func prediction(from input: MLFeatureProvider) throws -> MLFeatureProvider { input }
  public class func compileModel(at url: URL) async throws -> URL { url } }
