// Stand-ins for the CoreVideo API the adapter uses (type-check only, never run). Each declaration
// follows the Apple documentation page named above it, in its Swift shape.
import Foundation
/// https://developer.apple.com/documentation/kernel/ostype (MacTypes)
public typealias OSType = UInt32
/// https://developer.apple.com/documentation/corevideo/cvreturn
public typealias CVReturn = Int32
/// https://developer.apple.com/documentation/corevideo/cvbuffer
public final class CVBuffer {}
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffer
public typealias CVPixelBuffer = CVBuffer
/// https://developer.apple.com/documentation/corevideo/cvpixelbufferlockflags
public struct CVPixelBufferLockFlags: OptionSet { public let rawValue: UInt64; public init(rawValue: UInt64) { self.rawValue = rawValue } }
/// https://developer.apple.com/documentation/corevideo/kcvreturnsuccess
public let kCVReturnSuccess: CVReturn = 0
/// https://developer.apple.com/documentation/corevideo/kcvpixelbufferiosurfacepropertieskey
public let kCVPixelBufferIOSurfacePropertiesKey: NSString = "IOSurfaceProperties"
/// https://developer.apple.com/documentation/corefoundation/kcfallocatordefault
public let kCFAllocatorDefault: AnyObject? = nil
/// https://developer.apple.com/documentation/corefoundation/cfdictionary
public typealias CFDictionary = NSDictionary
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffercreate
public func CVPixelBufferCreate(_ a: AnyObject?, _ w: Int, _ h: Int, _ f: OSType, _ attrs: CFDictionary?, _ out: UnsafeMutablePointer<CVPixelBuffer?>) -> CVReturn { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbufferlockbaseaddress
public func CVPixelBufferLockBaseAddress(_ b: CVPixelBuffer, _ f: CVPixelBufferLockFlags) -> CVReturn { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbufferunlockbaseaddress
public func CVPixelBufferUnlockBaseAddress(_ b: CVPixelBuffer, _ f: CVPixelBufferLockFlags) -> CVReturn { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetplanecount
public func CVPixelBufferGetPlaneCount(_ b: CVPixelBuffer) -> Int { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetbaseaddress
public func CVPixelBufferGetBaseAddress(_ b: CVPixelBuffer) -> UnsafeMutableRawPointer? { nil }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetbytesperrow
public func CVPixelBufferGetBytesPerRow(_ b: CVPixelBuffer) -> Int { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetheight
public func CVPixelBufferGetHeight(_ b: CVPixelBuffer) -> Int { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetbaseaddressofplane
public func CVPixelBufferGetBaseAddressOfPlane(_ b: CVPixelBuffer, _ p: Int) -> UnsafeMutableRawPointer? { nil }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetbytesperrowofplane
public func CVPixelBufferGetBytesPerRowOfPlane(_ b: CVPixelBuffer, _ p: Int) -> Int { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetheightofplane
public func CVPixelBufferGetHeightOfPlane(_ b: CVPixelBuffer, _ p: Int) -> Int { 0 }
/// https://developer.apple.com/documentation/objectivec/1502165-autoreleasepool (Foundation on Apple platforms)
public func autoreleasepool<T>(invoking body: () throws -> T) rethrows -> T { try body() }
/// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_32bgra
public let kCVPixelFormatType_32BGRA: OSType = 0x42475241
/// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_32argb
public let kCVPixelFormatType_32ARGB: OSType = 0x20
/// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_32rgba
public let kCVPixelFormatType_32RGBA: OSType = 0x52474241
/// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_onecomponent8
public let kCVPixelFormatType_OneComponent8: OSType = 0x4C303038
/// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_onecomponent16half
public let kCVPixelFormatType_OneComponent16Half: OSType = 0x4C303068
/// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_onecomponent32float
public let kCVPixelFormatType_OneComponent32Float: OSType = 0x4C303066
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetwidth
public func CVPixelBufferGetWidth(_ b: CVPixelBuffer) -> Int { 0 }
/// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetpixelformattype
public func CVPixelBufferGetPixelFormatType(_ b: CVPixelBuffer) -> OSType { 0 }
