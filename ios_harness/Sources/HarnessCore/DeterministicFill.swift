import Foundation

/// SplitMix64: a small, fast generator whose sequence is the same on every platform, so that the
/// preallocated inputs are identical from run to run and device to device.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `[-1, 1)` with 24 random bits.
    public mutating func nextSignedUnitFloat() -> Float {
        let bits = next() >> 40
        return Float(bits) / 16_777_216 * 2 - 1
    }
}

/// Element types of a Core ML multi-array, identified by `MLMultiArrayDataType.rawValue`
/// (so that this Foundation-only module can name and fill them without importing Core ML).
public enum MultiArrayElementType: String, CaseIterable, Sendable {
    case float16
    case float32
    /// Written as `double` in reports.
    case float64
    case int32
    case int8

    /// Maps `MLMultiArrayDataType.rawValue` (`0x10000 | bits` for floats, `0x20000 | bits` for
    /// integers); nil for a type this harness does not know.
    public init?(coreMLRawValue: Int) {
        switch coreMLRawValue {
        case 0x10010: self = .float16
        case 0x10020: self = .float32
        case 0x10040: self = .float64
        case 0x20020: self = .int32
        case 0x20008: self = .int8
        default: return nil
        }
    }

    /// The report's `data_type`: `float16`, `float32`, `double`, `int32`, `int8`.
    public var reportName: String {
        self == .float64 ? "double" : rawValue
    }

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float16: return 2
        case .float32: return 4
        case .float64: return 8
        case .int32: return 4
        case .int8: return 1
        }
    }
}

/// Fills preallocated input memory with deterministic pseudo-random values.
public enum DeterministicFill {
    /// Default seed ("MobileOn" in ASCII).
    public static let defaultSeed: UInt64 = 0x4D6F_6269_6C65_4F6E

    /// Fills `buffer` with elements of `type`: floats uniform in `[-1, 1)`, integers in
    /// `0..<10`. Trailing bytes that do not make a whole element are left alone. Padding between
    /// rows (strided storage) is filled too, which is harmless.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer, as type: MultiArrayElementType, seed: UInt64 = DeterministicFill.defaultSeed) {
        var generator = SplitMix64(seed: seed)
        let count = buffer.count / type.byteWidth
        for index in 0..<count {
            let offset = index * type.byteWidth
            switch type {
            case .float16:
                buffer.storeBytes(of: HalfPrecision.bits(from: generator.nextSignedUnitFloat()), toByteOffset: offset, as: UInt16.self)
            case .float32:
                buffer.storeBytes(of: generator.nextSignedUnitFloat(), toByteOffset: offset, as: Float.self)
            case .float64:
                buffer.storeBytes(of: Double(generator.nextSignedUnitFloat()), toByteOffset: offset, as: Double.self)
            case .int32:
                buffer.storeBytes(of: Int32(truncatingIfNeeded: generator.next() % 10), toByteOffset: offset, as: Int32.self)
            case .int8:
                buffer.storeBytes(of: Int8(truncatingIfNeeded: generator.next() % 10), toByteOffset: offset, as: Int8.self)
            }
        }
    }

    /// Fills `buffer` with pseudo-random bytes (8-bit image data).
    public static func fillBytes(_ buffer: UnsafeMutableRawBufferPointer, seed: UInt64 = DeterministicFill.defaultSeed) {
        var generator = SplitMix64(seed: seed)
        for index in 0..<buffer.count {
            buffer[index] = UInt8(truncatingIfNeeded: generator.next() >> 56)
        }
    }
}

/// IEEE 754 half precision, without the `Float16` type (unavailable on Intel Macs).
public enum HalfPrecision {
    /// The binary16 bit pattern nearest to `value`: round to nearest, ties to even; overflow gives
    /// infinity, NaN a quiet NaN, values below half the smallest subnormal a signed zero.
    public static func bits(from value: Float) -> UInt16 {
        let f = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (f >> 16) & 0x8000)
        let exponent = Int((f >> 23) & 0xFF)
        let mantissa = f & 0x7F_FFFF

        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x0200 : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F {
            return sign | 0x7C00
        }
        if halfExponent <= 0 {
            // Subnormal half (or zero): value = significand * 2^-24 with significand < 1024.
            let shift = 14 - halfExponent
            if shift > 24 {
                return sign
            }
            let significand = mantissa | 0x80_0000
            var half = significand >> UInt32(shift)
            let remainder = significand & ((UInt32(1) << UInt32(shift)) - 1)
            let halfway = UInt32(1) << UInt32(shift - 1)
            if remainder > halfway || (remainder == halfway && (half & 1) == 1) {
                half += 1
            }
            return sign | UInt16(truncatingIfNeeded: half)
        }
        var half = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) == 1) {
            half += 1  // may carry into the exponent, up to infinity: still correct
        }
        return sign | UInt16(truncatingIfNeeded: half)
    }
}

/// Report names of CoreVideo pixel formats (`OSType` four-character codes).
public enum PixelFormatName {
    /// `kCVPixelFormatType_32ARGB`.
    public static let argb32: UInt32 = 0x0000_0020
    /// `kCVPixelFormatType_32BGRA` ('BGRA').
    public static let bgra32: UInt32 = fourCharacterCode("BGRA")
    /// `kCVPixelFormatType_32RGBA` ('RGBA').
    public static let rgba32: UInt32 = fourCharacterCode("RGBA")
    /// `kCVPixelFormatType_OneComponent8` ('L008').
    public static let gray8: UInt32 = fourCharacterCode("L008")
    /// `kCVPixelFormatType_OneComponent16Half` ('L00h').
    public static let gray16Half: UInt32 = fourCharacterCode("L00h")
    /// `kCVPixelFormatType_OneComponent32Float` ('L00f').
    public static let gray32Float: UInt32 = fourCharacterCode("L00f")

    /// `bgra8`, `argb8`, `rgba8`, `gray8`, `gray16half`, `gray32float`; `fourcc:XXXX` for another
    /// printable code; `unknown:<decimal>` otherwise.
    public static func name(for format: UInt32) -> String {
        switch format {
        case bgra32: return "bgra8"
        case argb32: return "argb8"
        case rgba32: return "rgba8"
        case gray8: return "gray8"
        case gray16Half: return "gray16half"
        case gray32Float: return "gray32float"
        default:
            let bytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: format >> UInt32($0)) }
            if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                return "fourcc:" + String(decoding: bytes, as: UTF8.self)
            }
            return "unknown:\(format)"
        }
    }

    /// The element type to fill a pixel buffer of `format` with: half or float for the
    /// floating-point one-component formats, nil (plain bytes) for the others.
    public static func elementType(for format: UInt32) -> MultiArrayElementType? {
        switch format {
        case gray16Half: return .float16
        case gray32Float: return .float32
        default: return nil
        }
    }

    /// The big-endian code of four ASCII characters, e.g. `"BGRA"` -> `0x42475241`.
    /// Characters beyond the first four are ignored; missing ones count as spaces.
    public static func fourCharacterCode(_ text: String) -> UInt32 {
        var code: UInt32 = 0
        var utf8 = Array(text.utf8.prefix(4))
        while utf8.count < 4 { utf8.append(0x20) }
        for byte in utf8 {
            code = code << 8 | UInt32(byte)
        }
        return code
    }
}
