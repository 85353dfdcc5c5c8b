import Foundation
import XCTest
// Darwin XCTest API missing from swift-corelibs-xctest, stubbed for type-checking only.
open class XCTAttachment: @unchecked Sendable {
    public enum Lifetime { case keepAlways, deleteOnSuccess }
    public var name: String?
    public var lifetime: Lifetime = .deleteOnSuccess
    public init(data: Data, uniformTypeIdentifier: String) {}
}
extension XCTestCase {
    @MainActor public func add(_ attachment: XCTAttachment) {}
}
