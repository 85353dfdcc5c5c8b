import Foundation
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the headless test and the macOS runner write: the output stream (marked lines), the log
/// stream (progress), and attachments (the test's result bundle; ignored elsewhere).
public protocol HarnessOutput: Sendable {
    /// One line of output (a marked line): written with a single `write` call.
    func output(_ line: String)
    /// One human-readable line (progress, errors).
    func log(_ line: String)
    /// A file attached to the run's results (an `XCTAttachment` in the headless test).
    func attach(name: String, data: Data)
}

extension HarnessOutput {
    /// No attachments by default.
    public func attach(name: String, data: Data) {}

    /// ``log(_:)`` with the ``Harness/logPrefix``.
    public func progress(_ text: String) {
        log("\(Harness.logPrefix) \(text)")
    }
}

/// Writes whole lines to file descriptors, each line (text plus newline) in one `write(2)` call,
/// so that a marked line is not split by stdio buffering or interleaved with another writer of
/// this process at a buffer boundary. (A pipe keeps a single write atomic only up to `PIPE_BUF`
/// bytes; beyond that the reader may see it in pieces, which is why the report is also attached
/// and saved as a file.) A short write is continued until the line is out or the write fails.
public struct FileDescriptorOutput: HarnessOutput {
    /// Descriptor for ``output(_:)`` (1: stdout).
    public let outputDescriptor: Int32
    /// Descriptor for ``log(_:)`` (2: stderr).
    public let logDescriptor: Int32

    public init(outputDescriptor: Int32 = 1, logDescriptor: Int32 = 2) {
        self.outputDescriptor = outputDescriptor
        self.logDescriptor = logDescriptor
    }

    /// stdout for output, stdout for the log too (the headless test: `xcodebuild` shows stdout).
    public static let standardOutputOnly = FileDescriptorOutput(outputDescriptor: 1, logDescriptor: 1)

    public func output(_ line: String) {
        Self.writeLine(line, to: outputDescriptor)
    }

    public func log(_ line: String) {
        Self.writeLine(line, to: logDescriptor)
    }

    /// Writes `line` and a newline to `descriptor`; returns the number of `write` calls made
    /// (1 unless the kernel accepted only part of it), or nil when a write failed.
    @discardableResult
    public static func writeLine(_ line: String, to descriptor: Int32) -> Int? {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        return bytes.withUnsafeBytes { raw -> Int? in
            var offset = 0
            var calls = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                calls += 1
                if written < 0 {
                    if errno == EINTR { continue }
                    return nil
                }
                offset += written
            }
            return calls
        }
    }
}
