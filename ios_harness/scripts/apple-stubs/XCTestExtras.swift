import Foundation
import XCTest
// Darwin XCTest API missing from swift-corelibs-xctest, stubbed for type-checking only.
/// https://developer.apple.com/documentation/xctest/xctattachment
open class XCTAttachment: @unchecked Sendable {
    /// https://developer.apple.com/documentation/xctest/xctattachment/lifetime-swift.enum
    public enum Lifetime { case keepAlways, deleteOnSuccess }
    /// https://developer.apple.com/documentation/xctest/xctattachment/name
    public var name: String?
    /// https://developer.apple.com/documentation/xctest/xctattachment/lifetime-swift.property
    public var lifetime: Lifetime = .deleteOnSuccess
    /// https://developer.apple.com/documentation/xctest/xctattachment/init(data:uniformtypeidentifier:)
    public init(data: Data, uniformTypeIdentifier: String) {}
}
extension XCTestCase {
    /// https://developer.apple.com/documentation/xctest/xctactivity/add(_:)
    @MainActor public func add(_ attachment: XCTAttachment) {}
}
