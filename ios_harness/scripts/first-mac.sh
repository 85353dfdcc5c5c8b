#!/usr/bin/env bash
# First contact with a Mac: everything about ios_harness/ that Linux cannot check, in one go.
#
#   cd ios_harness && scripts/first-mac.sh            # logs in .build/first-mac/
#
# Steps (each one logged; the script goes on after a failure and sums up at the end):
#   1. swift build                       the package, HarnessCoreML and the macOS runner included
#   2. swift test                        HarnessCoreTests and, on macOS only, HarnessCoreMLTests
#   3. mobileone-harness on a tiny model the macOS runner end to end (needs python3 + coremltools)
#   4. xcodegen generate                 MobileOneBench.xcodeproj from project.yml
#   5. xcodebuild build-for-testing      the app, its frameworks and the test bundle for
#                                        generic/platform=iOS, without signing
#   6. the headless test on a simulator  xcodebuild test -only-testing:.../HeadlessBenchmarkTests on
#                                        the first available iPhone simulator, with the tiny model
#                                        staged in App/Models (or none: then the test must fail with
#                                        "no models bundled"), then its marked lines and the result
#                                        bundle's attachments are counted
#
# Needs: Xcode 16 or later (xcode-select -p), XcodeGen (brew install xcodegen); optional: python3
# with coremltools (pip install coremltools) for the tiny model. Nothing is signed and no device is
# needed. App/Models and App/run_config.json are restored afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
out=.build/first-mac
mkdir -p "$out"
results=()

step() {  # step NAME COMMAND...: runs COMMAND, logs it to $out/NAME.log, records PASS/FAIL
  local name=$1; shift
  printf '==> %-28s ' "$name"
  if "$@" >"$out/$name.log" 2>&1; then
    echo PASS; results+=("PASS $name")
  else
    echo "FAIL (see $out/$name.log)"; results+=("FAIL $name"); tail -n 15 "$out/$name.log" | sed 's/^/    /'
  fi
}

{ sw_vers; xcodebuild -version; swift --version; xcodegen --version; } >"$out/versions.log" 2>&1
cat "$out/versions.log"

step swift-build swift build
step swift-test swift test

# A tiny Core ML model (relu over a 1x3x8x8 float32 input), compiled to .mlmodelc.
tiny=""
make_tiny() {
  python3 - "$out/tiny_relu.mlpackage" <<'PY' && xcrun coremlcompiler compile "$out/tiny_relu.mlpackage" "$out"
import sys
import coremltools as ct
from coremltools.converters.mil import Builder as mb

@mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 8, 8))])
def prog(x):
    return mb.relu(x=x, name="y")

ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16).save(sys.argv[1])
PY
}
rm -rf "$out/tiny_relu.mlpackage" "$out/tiny_relu.mlmodelc"
step tiny-model make_tiny && [[ -d "$out/tiny_relu.mlmodelc" ]] && tiny="$out/tiny_relu.mlmodelc"
if [[ -n "$tiny" ]]; then
  step mac-runner swift run mobileone-harness --models "$tiny" --runs 50 --out "$out/mac-report.json"
fi

step xcodegen xcodegen generate
step build-for-testing xcodebuild build-for-testing -project MobileOneBench.xcodeproj -scheme MobileOneBenchApp \
  -destination generic/platform=iOS -derivedDataPath "$out/DerivedData" CODE_SIGNING_ALLOWED=NO

# The headless test on a simulator, with the tiny model staged (App/Models restored afterwards).
simulator=$(xcrun simctl list devices available --json 2>/dev/null | python3 -c '
import json, sys
devices = json.load(sys.stdin)["devices"]
ids = [d["udid"] for runtime, ds in sorted(devices.items(), reverse=True) if "iOS" in runtime
       for d in ds if d.get("isAvailable") and d["name"].startswith("iPhone")]
print(ids[0] if ids else "")' 2>/dev/null)
backup="$out/App-Models-backup"
rm -rf "$backup" && mkdir -p "$backup" && cp -R App/Models/. "$backup/"
[[ -f App/run_config.json ]] && cp App/run_config.json "$out/run_config.backup.json"
find App/Models -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
if [[ -n "$tiny" ]]; then
  cp -R "$tiny" App/Models/
  printf '{"runs": 100, "tag": "first-mac"}\n' >App/run_config.json
  xcodegen generate >/dev/null 2>&1
fi
if [[ -z "$simulator" ]]; then
  echo "==> simulator-test               SKIP (no available iPhone simulator: xcrun simctl list devices)"
  results+=("SKIP simulator-test")
else
  rm -rf "$out/test.xcresult"
  expect_failure=$([[ -z "$tiny" ]] && echo yes || echo no)
  step simulator-test xcodebuild test -project MobileOneBench.xcodeproj -scheme MobileOneBenchApp \
    -destination "id=$simulator" -only-testing:MobileOneBenchAppTests/HeadlessBenchmarkTests \
    -derivedDataPath "$out/DerivedData" -resultBundlePath "$out/test.xcresult" CODE_SIGNING_ALLOWED=NO
  if [[ $expect_failure == yes ]] && grep -q "no models bundled" "$out/simulator-test.log"; then
    results[${#results[@]}-1]="PASS simulator-test (failed as it must with no model staged: no models bundled)"
  fi
  marked=$(grep -c 'MOBILEONE_BENCH_REPORT {' "$out/simulator-test.log" || true)
  echo "    marked lines in the xcodebuild output: $marked (expected: 1 with the tiny model, 0 without)"
  plans=$(grep -c 'MOBILEONE_BENCH_COMPUTE_PLAN {' "$out/simulator-test.log" || true)
  echo "    compute-plan lines: $plans (expected: 1 with the tiny model; its status says whether MLComputePlan ran)"
  rm -rf "$out/attachments" && mkdir -p "$out/attachments"
  if xcrun xcresulttool export attachments --path "$out/test.xcresult" --output-path "$out/attachments" \
      >"$out/attachments.log" 2>&1; then
    reports=$(grep -rl '"schema" *: *"mobileone-bench/harness-report"' "$out/attachments" | wc -l | tr -d ' ')
    echo "    result-bundle attachments holding a report: $reports" \
         "(expected: 2 with the tiny model: one per model and the whole report)"
    echo "    manifest.json (the Python CLI reads the attachments through it; keep it as a fixture):"
    head -c 2000 "$out/attachments/manifest.json" 2>/dev/null | sed 's/^/      /'
  else
    echo "    xcresulttool export attachments failed (Xcode 16 needed; see $out/attachments.log)"
  fi
fi
# Restore what was staged before.
find App/Models -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
cp -R "$backup/." App/Models/
rm -f App/run_config.json
[[ -f "$out/run_config.backup.json" ]] && mv "$out/run_config.backup.json" App/run_config.json

echo
echo "summary:"
printf '  %s\n' "${results[@]}"
if printf '%s\n' "${results[@]}" | grep -q '^FAIL'; then
  echo "first failure first: read its log in $out/ (README.md, 'The first Mac')"
  exit 1
fi
