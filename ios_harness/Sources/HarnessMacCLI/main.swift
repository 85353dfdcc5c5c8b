// mobileone-harness: the macOS command-line runner.
//
//     swift run -c release mobileone-harness --models Models/ --runs 1000 --out report.json
//
// Core ML exists only on Apple platforms; elsewhere (Linux CI) this program compiles, says so,
// and exits with status 2.

import Foundation
import HarnessCore

#if canImport(CoreML)
import HarnessCoreML

let status = await MacCommandLineRunner.run(arguments: Array(CommandLine.arguments.dropFirst()))
exit(status)
#else
let message = """
    mobileone-harness \(Harness.version): Core ML is only available on macOS and iOS, so this \
    build cannot run models. Run it on a Mac (swift run -c release mobileone-harness --models DIR), \
    or use the iOS app in ios_harness/ (see ios_harness/README.md).

    """
FileHandle.standardError.write(Data(message.utf8))
exit(2)
#endif
