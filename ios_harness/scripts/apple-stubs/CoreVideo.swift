// Minimal stand-ins with the shapes of the CoreVideo API used by the adapter (type-check only).
import Foundation
public typealias OSType = UInt32
public typealias CVReturn = Int32
public final class CVBuffer {}
public typealias CVPixelBuffer = CVBuffer
public struct CVPixelBufferLockFlags: OptionSet { public let rawValue: UInt64; public init(rawValue: UInt64) { self.rawValue = rawValue } }
public let kCVReturnSuccess: CVReturn = 0
public let kCVPixelBufferIOSurfacePropertiesKey: NSString = "IOSurfaceProperties"
public let kCFAllocatorDefault: AnyObject? = nil
public typealias CFDictionary = NSDictionary
public func CVPixelBufferCreate(_ a: AnyObject?, _ w: Int, _ h: Int, _ f: OSType, _ attrs: CFDictionary?, _ out: UnsafeMutablePointer<CVPixelBuffer?>) -> CVReturn { 0 }
public func CVPixelBufferLockBaseAddress(_ b: CVPixelBuffer, _ f: CVPixelBufferLockFlags) -> CVReturn { 0 }
public func CVPixelBufferUnlockBaseAddress(_ b: CVPixelBuffer, _ f: CVPixelBufferLockFlags) -> CVReturn { 0 }
public func CVPixelBufferGetPlaneCount(_ b: CVPixelBuffer) -> Int { 0 }
public func CVPixelBufferGetBaseAddress(_ b: CVPixelBuffer) -> UnsafeMutableRawPointer? { nil }
public func CVPixelBufferGetBytesPerRow(_ b: CVPixelBuffer) -> Int { 0 }
public func CVPixelBufferGetHeight(_ b: CVPixelBuffer) -> Int { 0 }
public func CVPixelBufferGetBaseAddressOfPlane(_ b: CVPixelBuffer, _ p: Int) -> UnsafeMutableRawPointer? { nil }
public func CVPixelBufferGetBytesPerRowOfPlane(_ b: CVPixelBuffer, _ p: Int) -> Int { 0 }
public func CVPixelBufferGetHeightOfPlane(_ b: CVPixelBuffer, _ p: Int) -> Int { 0 }
public func autoreleasepool<T>(invoking body: () throws -> T) rethrows -> T { try body() }
public let kCVPixelFormatType_32BGRA: OSType = 0x42475241
public let kCVPixelFormatType_32ARGB: OSType = 0x20
public let kCVPixelFormatType_32RGBA: OSType = 0x52474241
public let kCVPixelFormatType_OneComponent8: OSType = 0x4C303038
public let kCVPixelFormatType_OneComponent16Half: OSType = 0x4C303068
public let kCVPixelFormatType_OneComponent32Float: OSType = 0x4C303066
public func CVPixelBufferGetWidth(_ b: CVPixelBuffer) -> Int { 0 }
public func CVPixelBufferGetPixelFormatType(_ b: CVPixelBuffer) -> OSType { 0 }
