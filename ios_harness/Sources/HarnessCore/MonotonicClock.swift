import Dispatch
import Foundation

/// A clock that only moves forward, read in nanoseconds.
///
/// Only differences between two readings are meaningful. Inject a fake in tests to check what the
/// timing loop times and what it does not. Sendable: the session hands it to the timing thread.
public protocol MonotonicClock: Sendable {
    /// Identifier written to each result's `clock` field.
    var identifier: String { get }

    /// The current reading, in nanoseconds.
    func nowNanoseconds() -> UInt64
}

/// The harness clock: `DispatchTime.now().uptimeNanoseconds`.
///
/// On Apple platforms this is `mach_absolute_time` converted to nanoseconds (monotonic, does not
/// advance while the device sleeps); on Linux it is `CLOCK_MONOTONIC`. Never the wall clock:
/// `Date()` can jump when the system time is adjusted.
public struct UptimeClock: MonotonicClock, Sendable {
    public init() {}

    public var identifier: String { Harness.clockIdentifier }

    @inline(__always)
    public func nowNanoseconds() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }
}
