#!/usr/bin/env bash
# Type-checks, on Linux, the Swift files that only Apple platforms compile: Sources/HarnessCoreML,
# the Core ML branch of Sources/HarnessMacCLI, Tests/HarnessCoreMLTests, App/BenchmarkViewModel.swift
# and AppTests/, against the stand-ins in scripts/apple-stubs/ (the shapes of the Core ML, CoreVideo,
# SwiftUI and XCTest API these files use, written by hand, each declaration after the Apple
# documentation page its comment names: Objective-C enums keep unknown raw values as the real
# import does, availability as documented, MLComputePlan and MLModelStructure included). It
# catches code that no longer fits HarnessCore or itself, and uses of the SDK the documentation
# does not allow; the real SDKs only a Mac checks (scripts/first-mac.sh, .github/workflows/macos.yml).
# App/ContentView.swift (SwiftUI views) is not checked.
#
#   cd ios_harness && scripts/typecheck-apple-code.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/Sources/{CoreVideo,CoreML,SwiftUI,HarnessCoreML,HarnessMacCLI,App,AppTests} "$work/Tests/HarnessCoreMLTests"
ln -s "$here/Sources/HarnessCore" "$work/Sources/HarnessCore"
cp "$here/scripts/apple-stubs/CoreVideo.swift" "$work/Sources/CoreVideo/"
cp "$here/scripts/apple-stubs/CoreML.swift" "$work/Sources/CoreML/"
cp "$here/scripts/apple-stubs/SwiftUI.swift" "$work/Sources/SwiftUI/"
cp "$here/scripts/apple-stubs/XCTestExtras.swift" "$work/Sources/AppTests/"
cp "$here"/Sources/HarnessCoreML/*.swift "$work/Sources/HarnessCoreML/"
cp "$here"/Sources/HarnessMacCLI/*.swift "$work/Sources/HarnessMacCLI/"
cp "$here"/Tests/HarnessCoreMLTests/*.swift "$work/Tests/HarnessCoreMLTests/"
cp "$here/App/BenchmarkViewModel.swift" "$work/Sources/App/"
cp "$here"/AppTests/*.swift "$work/Sources/AppTests/"
cat >"$work/Package.swift" <<'SWIFT'
// swift-tools-version:6.0
import PackageDescription
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]
let mode: [SwiftSetting] = Context.environment["APPLE_CODE_MODE"] == "6" ? [] : v5
let package = Package(name: "AppleCodeCheck", targets: [
    .target(name: "HarnessCore"),
    .target(name: "CoreVideo", swiftSettings: v5),
    .target(name: "CoreML", dependencies: ["CoreVideo"], swiftSettings: v5),
    .target(name: "SwiftUI", swiftSettings: v5),
    .target(name: "HarnessCoreML", dependencies: ["HarnessCore", "CoreML"], swiftSettings: v5),
    .executableTarget(name: "HarnessMacCLI", dependencies: ["HarnessCore", "HarnessCoreML"], swiftSettings: v5),
    .target(name: "App", dependencies: ["HarnessCore", "HarnessCoreML", "SwiftUI"], swiftSettings: mode),
    .target(name: "AppTests", dependencies: ["HarnessCore", "HarnessCoreML"], swiftSettings: mode),
    .testTarget(name: "HarnessCoreMLTests", dependencies: ["HarnessCore", "HarnessCoreML"], swiftSettings: v5),
], swiftLanguageModes: [.v6])
SWIFT
cd "$work"
echo "== Swift 5 mode (as project.yml builds App/ and AppTests/)"
"${SWIFT:-swift}" build --build-tests 2>&1 | grep -E "error|warning: " | grep -v "CVPixelBufferUnlockBaseAddress' is unused" || true
"${SWIFT:-swift}" build --build-tests >/dev/null 2>&1
echo "== Swift 6 mode for App/ and AppTests/"
APPLE_CODE_MODE=6 "${SWIFT:-swift}" build --build-tests 2>&1 | grep -E "error|warning: " | grep -v "CVPixelBufferUnlockBaseAddress' is unused" || true
APPLE_CODE_MODE=6 "${SWIFT:-swift}" build --build-tests >/dev/null 2>&1
echo "type-check passed (against stand-ins, not the Apple SDKs)"
