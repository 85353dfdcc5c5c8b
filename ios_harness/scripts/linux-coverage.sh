#!/usr/bin/env bash
# The share of the harness's non-UI Swift lines that Linux compiles and the tests exercise.
#
#   cd ios_harness && scripts/linux-coverage.sh
#
# Numerator: lines of Sources/ that `swift test --enable-code-coverage` executes (llvm-cov's
# executable lines). Denominator: llvm-cov's executable lines of every Source file compiled
# into the tests, plus every code line (not blank, not only a comment) of the non-UI files that
# Linux compiles to nothing or does not test: Sources/HarnessCoreML, Sources/HarnessMacCLI and
# AppTests (the headless XCTest adapter). App/ (the SwiftUI views and their view model) is UI;
# its lines are printed separately, with the share they would make if counted.
set -euo pipefail
cd "$(dirname "$0")/.."

swift test --enable-code-coverage >/dev/null
bin_dir=$(swift build --show-bin-path 2>/dev/null)
profile="$bin_dir/codecov/default.profdata"
tests=$(find "$bin_dir" -maxdepth 1 -name '*PackageTests.xctest' | head -n 1)
if [[ -f "$tests/Contents/MacOS/$(basename "$tests" .xctest)" ]]; then
  tests="$tests/Contents/MacOS/$(basename "$tests" .xctest)"
fi
# llvm-cov must match the compiler's profile format: prefer the one next to swift.
llvm_cov="$(dirname "$(command -v swift)")/llvm-cov"
if [[ ! -x "$llvm_cov" ]]; then
  if [[ "$(uname)" == Darwin ]]; then llvm_cov="xcrun llvm-cov"; else llvm_cov=llvm-cov; fi
fi
if [[ "$(uname)" == Darwin ]]; then
  echo "note: on macOS HarnessCoreML is compiled and measured too; the figure below is meant for Linux" >&2
fi

# "TOTAL <regions> <missed> <cover> <functions> <missed> <exec> <lines> <missed lines> <cover>"
read -r lines missed < <($llvm_cov report "$tests" -instr-profile="$profile" \
    -ignore-filename-regex='(\.build|Tests)/' | awk '$1 == "TOTAL" {print $8, $9}')
covered=$((lines - missed))

code_lines() {  # non-blank lines that are not only a // comment
  cat "$@" 2>/dev/null | grep -v -E '^\s*$' | grep -c -v -E '^\s*//' || true
}
apple_only=$(code_lines Sources/HarnessCoreML/*.swift Sources/HarnessMacCLI/*.swift AppTests/*.swift)
ui=$(code_lines App/*.swift)

share=$(awk -v c="$covered" -v t="$((lines + apple_only))" 'BEGIN {printf "%.1f", 100 * c / t}')
with_ui=$(awk -v c="$covered" -v t="$((lines + apple_only + ui))" 'BEGIN {printf "%.1f", 100 * c / t}')
echo "Linux: $covered of $lines executable lines of the compiled Sources exercised by swift test"
echo "not compiled or not tested on Linux (non-UI): $apple_only code lines (HarnessCoreML, HarnessMacCLI, AppTests)"
echo "UI (App/, not counted): $ui code lines"
echo "compiled and exercised on Linux: $share% of the non-UI lines ($with_ui% counting App/ too)"
