import Foundation

/// Which part of the timing loop an iteration belonged to.
public enum TimingPhase: String, Sendable {
    /// Untimed iterations before the timed ones.
    case warmup
    /// Timed iterations; each one is a sample.
    case timed
}

/// Why the timing loop stopped.
public enum TimingError: Error, CustomStringConvertible {
    /// `warmup` was negative or `runs` was less than 1.
    case invalidIterationCount(name: String, value: Int)
    /// The clock returned a smaller reading than before (a broken clock).
    case clockWentBackwards(start: UInt64, end: UInt64)
    /// The measured closure threw; `iteration` counts from 0 within `phase`.
    case iterationFailed(phase: TimingPhase, iteration: Int, of: Int, underlying: Error)
    /// ``TimingHooks/isCancelled`` returned true before `completed` iterations of `phase` were done.
    case cancelled(phase: TimingPhase, completed: Int)

    public var description: String {
        switch self {
        case let .invalidIterationCount(name, value):
            return "\(name) must be \(name == "runs" ? ">= 1" : ">= 0") (got \(value))"
        case let .clockWentBackwards(start, end):
            return "the monotonic clock went backwards (\(start) ns, then \(end) ns)"
        case let .iterationFailed(phase, iteration, total, underlying):
            return "\(phase == .warmup ? "warmup" : "timed") run \(iteration + 1) of \(total) failed: "
                + ErrorText.describe(underlying)
        case let .cancelled(phase, completed):
            return "cancelled after \(completed) \(phase == .warmup ? "warmup" : "timed") run(s)"
        }
    }
}

/// Optional callbacks of the timing loop. Both run between iterations, never inside a timed one.
public struct TimingHooks {
    /// Called after each timed iteration with (completed, total).
    public var progress: ((_ completed: Int, _ total: Int) -> Void)?
    /// Polled before each iteration; returning true stops the loop with ``TimingError/cancelled(phase:completed:)``.
    public var isCancelled: (() -> Bool)?

    public init(
        progress: ((_ completed: Int, _ total: Int) -> Void)? = nil,
        isCancelled: (() -> Bool)? = nil
    ) {
        self.progress = progress
        self.isCancelled = isCancelled
    }

    /// No callbacks.
    public static var empty: TimingHooks { TimingHooks() }
}

/// Times a closure many times, one sample per call, with a monotonic clock.
public struct TimingLoop: Sendable {
    /// The clock every sample is read from.
    public let clock: any MonotonicClock

    public init(clock: any MonotonicClock = UptimeClock()) {
        self.clock = clock
    }

    /// Runs `body` `warmup` times untimed, then `runs` times timing each call on its own.
    ///
    /// The clock is read exactly twice per timed iteration, right before and right after `body`;
    /// the warmup iterations, the hooks and the bookkeeping are outside those readings. Storage
    /// for the samples is reserved before the first timed iteration, so the loop allocates nothing
    /// while timing.
    ///
    /// - Returns: exactly `runs` samples in milliseconds, in run order.
    /// - Throws: ``TimingError``; an error thrown by `body` is wrapped in
    ///   ``TimingError/iterationFailed(phase:iteration:of:underlying:)`` and stops the loop.
    public func measure(
        warmup: Int,
        runs: Int,
        hooks: TimingHooks = .empty,
        _ body: () throws -> Void
    ) throws -> [Double] {
        guard runs >= 1 else {
            throw TimingError.invalidIterationCount(name: "runs", value: runs)
        }
        try runUntimed(warmup, hooks: hooks, body)

        var samples: [Double] = []
        samples.reserveCapacity(runs)
        for iteration in 0..<runs {
            if let isCancelled = hooks.isCancelled, isCancelled() {
                throw TimingError.cancelled(phase: .timed, completed: iteration)
            }
            let start = clock.nowNanoseconds()
            do {
                try body()
            } catch {
                throw TimingError.iterationFailed(phase: .timed, iteration: iteration, of: runs, underlying: error)
            }
            let end = clock.nowNanoseconds()
            guard end >= start else {
                throw TimingError.clockWentBackwards(start: start, end: end)
            }
            samples.append(Self.milliseconds(from: end - start))
            hooks.progress?(iteration + 1, runs)
        }
        return samples
    }

    /// Runs `body` `count` times untimed (the warmup), polling ``TimingHooks/isCancelled``
    /// before each call.
    ///
    /// - Throws: ``TimingError`` (``TimingError/iterationFailed(phase:iteration:of:underlying:)``
    ///   with phase `warmup` when `body` throws).
    public func runUntimed(_ count: Int, hooks: TimingHooks = .empty, _ body: () throws -> Void) throws {
        guard count >= 0 else {
            throw TimingError.invalidIterationCount(name: "warmup", value: count)
        }
        for iteration in 0..<count {
            if let isCancelled = hooks.isCancelled, isCancelled() {
                throw TimingError.cancelled(phase: .warmup, completed: iteration)
            }
            do {
                try body()
            } catch {
                throw TimingError.iterationFailed(phase: .warmup, iteration: iteration, of: count, underlying: error)
            }
        }
    }

    /// Times one call of `body`.
    ///
    /// - Returns: what `body` returned and how long it took, in milliseconds.
    /// - Throws: whatever `body` throws, unchanged, or ``TimingError/clockWentBackwards(start:end:)``.
    public func timeOnce<T>(_ body: () throws -> T) throws -> (value: T, milliseconds: Double) {
        let start = clock.nowNanoseconds()
        let value = try body()
        let end = clock.nowNanoseconds()
        guard end >= start else {
            throw TimingError.clockWentBackwards(start: start, end: end)
        }
        return (value, Self.milliseconds(from: end - start))
    }

    /// Nanoseconds to milliseconds.
    @inline(__always)
    static func milliseconds(from nanoseconds: UInt64) -> Double {
        Double(nanoseconds) / 1_000_000
    }
}
