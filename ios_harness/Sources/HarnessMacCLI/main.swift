// mobileone-harness: the macOS command-line runner.
//
//     swift run -c release mobileone-harness --models Models/ --runs 1000 --out report.json
//
// The program is HarnessCore's `MacRunner` with the Core ML backend; stdout carries the marked
// lines (one `write` call each), stderr the progress. Core ML exists only on Apple platforms;
// elsewhere (Linux CI) this program compiles, says so, and exits with status 2.

import Foundation
import HarnessCore

#if canImport(CoreML)
import HarnessCoreML

let status = await MacRunner.run(
    arguments: Array(CommandLine.arguments.dropFirst()),
    backend: CoreMLBackend(),
    output: FileDescriptorOutput()
)
exit(status)
#else
FileDescriptorOutput().log("""
    mobileone-harness \(Harness.version): Core ML is only available on macOS and iOS, so this \
    build cannot run models. Run it on a Mac (swift run -c release mobileone-harness --models DIR), \
    or use the iOS app in ios_harness/ (see ios_harness/README.md).
    """)
exit(2)
#endif
