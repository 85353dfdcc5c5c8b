// Stand-ins for the SwiftUI/Combine API the view model uses (type-check only).
/// https://developer.apple.com/documentation/combine/observableobject
public protocol ObservableObject: AnyObject {}
/// https://developer.apple.com/documentation/combine/published
@propertyWrapper public struct Published<Value> {
    public var wrappedValue: Value
    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }
}
