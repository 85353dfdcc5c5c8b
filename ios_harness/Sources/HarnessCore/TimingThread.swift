import Foundation

/// The thread every timed prediction runs on, the same in the app, the headless test and the
/// macOS runner: a dedicated `Thread` (not a pooled Swift-concurrency or XCTest thread) with the
/// highest quality of service, `.userInteractive`, started for one model and ended after it.
public enum TimingThread {
    /// Quality of service of the timing thread.
    public static let qualityOfService: QualityOfService = .userInteractive

    /// Name of the timing thread (visible in Instruments and in crash logs). At most 15
    /// characters: Linux truncates longer thread names, or refuses them.
    public static let name = "mobileone-timed"

    /// Runs `body` on a new dedicated thread and returns its value to the caller's task; the
    /// caller's thread is not blocked.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let started = DispatchSemaphore(value: 0)
            let thread = Thread {
                // Named again from inside: Foundation on Linux applies a name set before
                // `start()` to the Thread object only, not to the running thread. And only once
                // `start()` has returned: until then Foundation may not hold the new thread's
                // handle yet, the name is lost, and the thread keeps the one it inherited from
                // its creator (a Swift-concurrency worker's).
                started.wait()
                Thread.current.name = name
                continuation.resume(returning: body())
            }
            thread.name = name
            thread.qualityOfService = qualityOfService
            thread.start()
            started.signal()
        }
    }
}
