#if canImport(CoreML)
import CoreML
import Foundation
import HarnessCore
#if canImport(CoreVideo)
import CoreVideo
#endif

/// Why an input could not be preallocated.
public enum InputPreparationError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A required input of a type the harness cannot synthesize (string, dictionary, ...).
    case unsupportedFeatureType(name: String, type: String)
    /// A multi-array element type this harness does not know (raw `MLMultiArrayDataType`).
    case unsupportedElementType(name: String, rawValue: Int)
    /// A multi-array input without a usable shape.
    case unknownShape(name: String)
    /// A feature description without the constraint its type needs.
    case missingConstraint(name: String)
    /// `CVPixelBufferCreate` failed.
    case pixelBufferCreationFailed(name: String, status: Int32)
    /// An image input on a platform without CoreVideo.
    case imagesUnsupported(name: String)

    public var description: String {
        switch self {
        case let .unsupportedFeatureType(name, type):
            return "input \(name): cannot synthesize a value of type \(type)"
        case let .unsupportedElementType(name, rawValue):
            return "input \(name): unknown multi-array data type (raw value \(rawValue))"
        case let .unknownShape(name):
            return "input \(name): the model gives no usable shape"
        case let .missingConstraint(name):
            return "input \(name): the model description lacks its constraint"
        case let .pixelBufferCreationFailed(name, status):
            return "input \(name): CVPixelBufferCreate failed with status \(status)"
        case let .imagesUnsupported(name):
            return "input \(name): image inputs need CoreVideo"
        }
    }

    public var errorDescription: String? { description }
}

/// Builds a model's input once, from its own description, before anything is timed.
public enum InputFactory {
    /// One value per input of `description.inputDescriptionsByName`, wrapped once in an
    /// `MLDictionaryFeatureProvider`:
    ///
    /// - multi-array: `MLMultiArray` of the constraint's `shape` (or the first enumerated shape,
    ///   or the lower bounds of a range) and `dataType`, filled with deterministic pseudo-random
    ///   values (``DeterministicFill``);
    /// - image: `CVPixelBuffer` of the constraint's `pixelsWide` x `pixelsHigh` and
    ///   `pixelFormatType` (IOSurface-backed), filled likewise;
    /// - optional inputs of other types are left out; required ones are an error.
    ///
    /// - Parameter seed: base seed; input number `i` (in name order) uses `seed + i`.
    /// - Throws: ``InputPreparationError``, or Core ML's error.
    public static func makeInput(
        for description: MLModelDescription,
        seed: UInt64 = DeterministicFill.defaultSeed
    ) throws -> PreparedInput<MLDictionaryFeatureProvider> {
        var values: [String: MLFeatureValue] = [:]
        var descriptions: [InputDescription] = []
        let features = description.inputDescriptionsByName.sorted { $0.key < $1.key }
        for (index, (name, feature)) in features.enumerated() {
            let inputSeed = seed &+ UInt64(index)
            switch feature.type {
            case .multiArray:
                let (value, described) = try makeMultiArray(name: name, feature: feature, seed: inputSeed)
                values[name] = value
                descriptions.append(described)
            case .image:
                let (value, described) = try makeImage(name: name, feature: feature, seed: inputSeed)
                values[name] = value
                descriptions.append(described)
            default:
                if feature.isOptional {
                    continue
                }
                throw InputPreparationError.unsupportedFeatureType(name: name, type: typeName(feature.type))
            }
        }
        let provider = try MLDictionaryFeatureProvider(dictionary: values)
        return PreparedInput(value: provider, descriptions: descriptions)
    }

    static func makeMultiArray(
        name: String,
        feature: MLFeatureDescription,
        seed: UInt64
    ) throws -> (MLFeatureValue, InputDescription) {
        guard let constraint = feature.multiArrayConstraint else {
            throw InputPreparationError.missingConstraint(name: name)
        }
        guard let elementType = MultiArrayElementType(coreMLRawValue: constraint.dataType.rawValue) else {
            throw InputPreparationError.unsupportedElementType(name: name, rawValue: constraint.dataType.rawValue)
        }
        let shape = try resolveShape(of: constraint, name: name)
        let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: constraint.dataType)
        array.withUnsafeMutableBytes { buffer, _ in
            DeterministicFill.fill(buffer, as: elementType, seed: seed)
        }
        let described = InputDescription(name: name, kind: .multiArray, shape: shape, dataType: elementType.reportName)
        return (MLFeatureValue(multiArray: array), described)
    }

    /// The shape to allocate: the constraint's default shape when it is fully known, else the
    /// first enumerated shape, else the lower bound of each dimension's range.
    static func resolveShape(of constraint: MLMultiArrayConstraint, name: String) throws -> [Int] {
        func usable(_ shape: [Int]) -> Bool {
            !shape.isEmpty && shape.allSatisfy { $0 > 0 }
        }
        let defaultShape = constraint.shape.map(\.intValue)
        if usable(defaultShape) {
            return defaultShape
        }
        let shapeConstraint = constraint.shapeConstraint
        if let first = shapeConstraint.enumeratedShapes.first {
            let enumerated = first.map(\.intValue)
            if usable(enumerated) {
                return enumerated
            }
        }
        let lowerBounds = shapeConstraint.sizeRangeForDimension.map { Swift.max(1, $0.rangeValue.location) }
        if usable(lowerBounds) {
            return lowerBounds
        }
        throw InputPreparationError.unknownShape(name: name)
    }

    static func makeImage(
        name: String,
        feature: MLFeatureDescription,
        seed: UInt64
    ) throws -> (MLFeatureValue, InputDescription) {
        guard let constraint = feature.imageConstraint else {
            throw InputPreparationError.missingConstraint(name: name)
        }
        #if canImport(CoreVideo)
        let width = constraint.pixelsWide
        let height = constraint.pixelsHigh
        let format = constraint.pixelFormatType
        let pixelBuffer = try makePixelBuffer(width: width, height: height, format: format, seed: seed, name: name)
        let described = InputDescription(
            name: name,
            kind: .image,
            shape: [height, width],
            dataType: PixelFormatName.name(for: format)
        )
        return (MLFeatureValue(pixelBuffer: pixelBuffer), described)
        #else
        throw InputPreparationError.imagesUnsupported(name: name)
        #endif
    }

    #if canImport(CoreVideo)
    /// An IOSurface-backed pixel buffer (so the GPU and Neural Engine can use it without a copy),
    /// filled with deterministic pseudo-random data plane by plane.
    static func makePixelBuffer(width: Int, height: Int, format: OSType, seed: UInt64, name: String) throws -> CVPixelBuffer {
        let attributes: [String: Any] = [
            kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any](),
        ]
        var created: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, format, attributes as CFDictionary, &created)
        guard status == kCVReturnSuccess, let pixelBuffer = created else {
            throw InputPreparationError.pixelBufferCreationFailed(name: name, status: status)
        }
        let lockStatus = CVPixelBufferLockBaseAddress(pixelBuffer, [])
        guard lockStatus == kCVReturnSuccess else {
            throw InputPreparationError.pixelBufferCreationFailed(name: name, status: lockStatus)
        }
        defer { CVPixelBufferUnlockBaseAddress(pixelBuffer, []) }

        let elementType = PixelFormatName.elementType(for: format)
        func fill(_ base: UnsafeMutableRawPointer?, byteCount: Int, seed: UInt64) {
            guard let base, byteCount > 0 else { return }
            let buffer = UnsafeMutableRawBufferPointer(start: base, count: byteCount)
            if let elementType {
                DeterministicFill.fill(buffer, as: elementType, seed: seed)
            } else {
                DeterministicFill.fillBytes(buffer, seed: seed)
            }
        }
        let planes = CVPixelBufferGetPlaneCount(pixelBuffer)
        if planes == 0 {
            fill(
                CVPixelBufferGetBaseAddress(pixelBuffer),
                byteCount: CVPixelBufferGetBytesPerRow(pixelBuffer) * CVPixelBufferGetHeight(pixelBuffer),
                seed: seed
            )
        } else {
            for plane in 0..<planes {
                fill(
                    CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, plane),
                    byteCount: CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, plane)
                        * CVPixelBufferGetHeightOfPlane(pixelBuffer, plane),
                    seed: seed &+ UInt64(plane)
                )
            }
        }
        return pixelBuffer
    }
    #endif

    /// A readable name for an `MLFeatureType`.
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
#endif
