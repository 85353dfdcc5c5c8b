// swift-tools-version:6.0
//
// MobileOne benchmark harness. HarnessCore holds the logic (configuration, discovery, input
// planning, the paper's protocol, the session loop, the headless-test and macOS-runner bodies,
// the JSON report), generic over a small backend protocol, and builds and tests on Linux.
// HarnessCoreML is the thin Core ML adapter (Apple platforms only). The iOS app and its headless
// XCTest entry (App/, AppTests/) are built from project.yml with XcodeGen from the same sources.
// No external dependencies: the package resolves offline.
//
// Language modes: HarnessCore and its tests use the Swift 6 language mode (complete strict
// concurrency checking), compiled and tested on Linux. The Apple-only targets stay in the Swift 5
// mode until a Mac has compiled them (see README.md, "What was compiled and tested where").

import PackageDescription

let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "MobileOneHarness",
    platforms: [
        .iOS(.v16),
        .macOS(.v13),
    ],
    products: [
        .library(name: "HarnessCore", targets: ["HarnessCore"]),
        .library(name: "HarnessCoreML", targets: ["HarnessCoreML"]),
        .executable(name: "mobileone-harness", targets: ["HarnessMacCLI"]),
    ],
    targets: [
        // Foundation only; builds and tests on Linux, in the Swift 6 language mode.
        .target(
            name: "HarnessCore",
            path: "Sources/HarnessCore"
        ),
        // The Core ML backend; every file is wrapped in `#if canImport(CoreML)`, so on Linux
        // this is an empty module.
        .target(
            name: "HarnessCoreML",
            dependencies: ["HarnessCore"],
            path: "Sources/HarnessCoreML",
            swiftSettings: swift5
        ),
        // `swift run -c release mobileone-harness --models DIR ...` on a Mac; on Linux it prints
        // that Core ML needs macOS and exits with status 2.
        .executableTarget(
            name: "HarnessMacCLI",
            dependencies: ["HarnessCore", "HarnessCoreML"],
            path: "Sources/HarnessMacCLI",
            swiftSettings: swift5
        ),
        .testTarget(
            name: "HarnessCoreTests",
            dependencies: ["HarnessCore"],
            path: "Tests/HarnessCoreTests"
        ),
        // Core ML adapter tests; empty on Linux.
        .testTarget(
            name: "HarnessCoreMLTests",
            dependencies: ["HarnessCore", "HarnessCoreML"],
            path: "Tests/HarnessCoreMLTests",
            swiftSettings: swift5
        ),
    ],
    swiftLanguageModes: [.v6]
)
