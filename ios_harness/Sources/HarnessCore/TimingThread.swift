import Foundation

/// The thread every timed prediction runs on, the same in the app, the headless test and the
/// macOS runner: a dedicated `Thread` (not a pooled Swift-concurrency or XCTest thread) with the
/// highest quality of service, `.userInteractive`, started for one model and ended after it.
public enum TimingThread {
    /// Quality of service of the timing thread.
    public static let qualityOfService: QualityOfService = .userInteractive

    /// Name of the timing thread (visible in Instruments and in crash logs).
    public static let name = "mobileone-bench.timing"

    /// Runs `body` on a new dedicated thread and returns its value to the caller's task; the
    /// caller's thread is not blocked.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let thread = Thread {
                continuation.resume(returning: body())
            }
            thread.name = name
            thread.qualityOfService = qualityOfService
            thread.start()
        }
    }
}
