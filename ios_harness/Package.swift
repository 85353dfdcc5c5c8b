// swift-tools-version:5.9
//
// MobileOne benchmark harness: a Foundation-only core (configuration, timing loop, statistics,
// JSON report), a Core ML runner, and a macOS command-line runner. The iOS app and its headless
// XCTest entry (App/, AppTests/) are built from project.yml with XcodeGen; they use the same
// sources as the library targets below. No external dependencies: the package resolves offline.

import PackageDescription

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
        // Foundation only; builds and tests on Linux.
        .target(
            name: "HarnessCore",
            path: "Sources/HarnessCore"
        ),
        // Core ML runner; every file is wrapped in `#if canImport(CoreML)`, so on Linux this is
        // an empty module.
        .target(
            name: "HarnessCoreML",
            dependencies: ["HarnessCore"],
            path: "Sources/HarnessCoreML"
        ),
        // `swift run -c release mobileone-harness --models DIR ...` on a Mac; on Linux it prints
        // that Core ML needs macOS and exits with status 2.
        .executableTarget(
            name: "HarnessMacCLI",
            dependencies: ["HarnessCore", "HarnessCoreML"],
            path: "Sources/HarnessMacCLI"
        ),
        .testTarget(
            name: "HarnessCoreTests",
            dependencies: ["HarnessCore"],
            path: "Tests/HarnessCoreTests"
        ),
        // Core ML mapping tests; empty on Linux.
        .testTarget(
            name: "HarnessCoreMLTests",
            dependencies: ["HarnessCore", "HarnessCoreML"],
            path: "Tests/HarnessCoreMLTests"
        ),
    ]
)
