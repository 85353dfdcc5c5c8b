import Foundation

/// What a model says about one of its inputs, as plain values (the Core ML adapter copies them out
/// of `MLFeatureDescription`), so that the planning below is tested on every platform.
public struct InputFeature: Equatable, Sendable {
    /// A multi-array input's constraint (`MLMultiArrayConstraint`).
    public struct MultiArrayConstraint: Equatable, Sendable {
        /// `shape`: the default shape; empty or with zeros when it is not fixed.
        public var shape: [Int]
        /// `dataType.rawValue` (`MLMultiArrayDataType`).
        public var dataTypeRawValue: Int
        /// `shapeConstraint.enumeratedShapes`, in order.
        public var enumeratedShapes: [[Int]]
        /// `shapeConstraint.sizeRangeForDimension`: the lower bound of each dimension's range.
        public var rangeLowerBounds: [Int]

        public init(shape: [Int], dataTypeRawValue: Int, enumeratedShapes: [[Int]] = [], rangeLowerBounds: [Int] = []) {
            self.shape = shape
            self.dataTypeRawValue = dataTypeRawValue
            self.enumeratedShapes = enumeratedShapes
            self.rangeLowerBounds = rangeLowerBounds
        }
    }

    /// An image input's constraint (`MLImageConstraint`).
    public struct ImageConstraint: Equatable, Sendable {
        public var pixelsWide: Int
        public var pixelsHigh: Int
        /// `pixelFormatType` (a CoreVideo `OSType`).
        public var pixelFormat: UInt32

        public init(pixelsWide: Int, pixelsHigh: Int, pixelFormat: UInt32) {
            self.pixelsWide = pixelsWide
            self.pixelsHigh = pixelsHigh
            self.pixelFormat = pixelFormat
        }
    }

    /// The feature's type and constraint; nil constraint when the description lacks it.
    public enum Kind: Equatable, Sendable {
        case multiArray(MultiArrayConstraint?)
        case image(ImageConstraint?)
        /// Any other feature type (string, int64, dictionary, ...), by name.
        case other(typeName: String)
    }

    public var name: String
    public var isOptional: Bool
    public var kind: Kind

    public init(name: String, isOptional: Bool = false, kind: Kind) {
        self.name = name
        self.isOptional = isOptional
        self.kind = kind
    }
}

/// Why an input could not be preallocated.
public enum InputPreparationError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A required input of a type the harness cannot synthesize (string, dictionary, ...).
    case unsupportedFeatureType(name: String, type: String)
    /// A multi-array element type this harness does not know (raw `MLMultiArrayDataType`).
    case unsupportedElementType(name: String, rawValue: Int)
    /// A multi-array input without a usable shape.
    case unknownShape(name: String)
    /// An image input without a usable size.
    case unknownImageSize(name: String, width: Int, height: Int)
    /// A feature description without the constraint its type needs.
    case missingConstraint(name: String)
    /// The backend could not allocate the value (e.g. `CVPixelBufferCreate` failed).
    case allocationFailed(name: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedFeatureType(name, type):
            return "input \(name): cannot synthesize a value of type \(type)"
        case let .unsupportedElementType(name, rawValue):
            return "input \(name): unknown multi-array data type (raw value \(rawValue))"
        case let .unknownShape(name):
            return "input \(name): the model gives no usable shape"
        case let .unknownImageSize(name, width, height):
            return "input \(name): the model gives no usable image size (\(width) x \(height))"
        case let .missingConstraint(name):
            return "input \(name): the model description lacks its constraint"
        case let .allocationFailed(name, reason):
            return "input \(name): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// One input to build, decided before anything is allocated.
public enum InputPlan: Equatable, Sendable {
    /// An `MLMultiArray` of `shape` and `elementType`, filled from `seed`.
    case multiArray(name: String, shape: [Int], elementType: MultiArrayElementType, seed: UInt64)
    /// A `CVPixelBuffer` of `width` x `height` in `pixelFormat`, filled from `seed`.
    case image(name: String, width: Int, height: Int, pixelFormat: UInt32, seed: UInt64)

    /// The feature name.
    public var name: String {
        switch self {
        case let .multiArray(name, _, _, _), let .image(name, _, _, _, _):
            return name
        }
    }

    /// How the report describes this input.
    public var description: InputDescription {
        switch self {
        case let .multiArray(name, shape, elementType, _):
            return InputDescription(name: name, kind: .multiArray, shape: shape, dataType: elementType.reportName)
        case let .image(name, width, height, pixelFormat, _):
            return InputDescription(name: name, kind: .image, shape: [height, width], dataType: PixelFormatName.name(for: pixelFormat))
        }
    }

    /// Fills the memory of this input (or of plane `plane` of an image) with its deterministic
    /// values: multi-arrays and the floating-point one-component image formats element-wise,
    /// other image formats byte-wise. Plane `i` uses `seed + i`.
    public func fill(_ buffer: UnsafeMutableRawBufferPointer, plane: Int = 0) {
        switch self {
        case let .multiArray(_, _, elementType, seed):
            DeterministicFill.fill(buffer, as: elementType, seed: seed)
        case let .image(_, _, _, pixelFormat, seed):
            let planeSeed = seed &+ UInt64(max(0, plane))
            if let elementType = PixelFormatName.elementType(for: pixelFormat) {
                DeterministicFill.fill(buffer, as: elementType, seed: planeSeed)
            } else {
                DeterministicFill.fillBytes(buffer, seed: planeSeed)
            }
        }
    }
}

/// Decides every input of a model from its features: shapes, data types and seeds.
public enum InputPlanner {
    /// The plan for `features`, in name order:
    ///
    /// - multi-array: the constraint's shape when it is fully known, else the first enumerated
    ///   shape, else the lower bound of each dimension's range (at least 1);
    /// - image: the constraint's `pixelsWide` x `pixelsHigh` and `pixelFormatType`;
    /// - optional inputs of other types are left out; required ones are an error.
    ///
    /// Input number `i` (in name order, counting every feature) is filled from `seed + i`.
    ///
    /// - Throws: ``InputPreparationError``.
    public static func plan(_ features: [InputFeature], seed: UInt64 = DeterministicFill.defaultSeed) throws -> [InputPlan] {
        var plans: [InputPlan] = []
        for (index, feature) in features.sorted(by: { $0.name < $1.name }).enumerated() {
            let inputSeed = seed &+ UInt64(index)
            switch feature.kind {
            case let .multiArray(constraint):
                guard let constraint else { throw InputPreparationError.missingConstraint(name: feature.name) }
                guard let elementType = MultiArrayElementType(coreMLRawValue: constraint.dataTypeRawValue) else {
                    throw InputPreparationError.unsupportedElementType(name: feature.name, rawValue: constraint.dataTypeRawValue)
                }
                let shape = try resolveShape(of: constraint, name: feature.name)
                plans.append(.multiArray(name: feature.name, shape: shape, elementType: elementType, seed: inputSeed))
            case let .image(constraint):
                guard let constraint else { throw InputPreparationError.missingConstraint(name: feature.name) }
                guard constraint.pixelsWide > 0, constraint.pixelsHigh > 0 else {
                    throw InputPreparationError.unknownImageSize(
                        name: feature.name, width: constraint.pixelsWide, height: constraint.pixelsHigh)
                }
                plans.append(.image(
                    name: feature.name, width: constraint.pixelsWide, height: constraint.pixelsHigh,
                    pixelFormat: constraint.pixelFormat, seed: inputSeed))
            case let .other(typeName):
                if feature.isOptional { continue }
                throw InputPreparationError.unsupportedFeatureType(name: feature.name, type: typeName)
            }
        }
        return plans
    }

    /// The shape to allocate for a multi-array (see ``plan(_:seed:)``).
    ///
    /// - Throws: ``InputPreparationError/unknownShape(name:)`` when no rule gives one.
    public static func resolveShape(of constraint: InputFeature.MultiArrayConstraint, name: String) throws -> [Int] {
        func usable(_ shape: [Int]) -> Bool {
            !shape.isEmpty && shape.allSatisfy { $0 > 0 }
        }
        if usable(constraint.shape) {
            return constraint.shape
        }
        if let first = constraint.enumeratedShapes.first, usable(first) {
            return first
        }
        let lowerBounds = constraint.rangeLowerBounds.map { Swift.max(1, $0) }
        if usable(lowerBounds) {
            return lowerBounds
        }
        throw InputPreparationError.unknownShape(name: name)
    }
}
