#!/usr/bin/env bash
# `npm run lint:cfn`: cfn-lint over the synthesized template, when cfn-lint is installed.
# Not part of `npm test` (CI machines may not have it). Errors fail; warnings are printed.
set -euo pipefail
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "cfn-lint is not installed: pipx install cfn-lint (or pip install cfn-lint, or apt-get install cfn-lint), then run npm run lint:cfn again" >&2
  exit 1
fi
npx cdk synth --quiet >/dev/null
status=0
cfn-lint --format parseable cdk.out/*.template.json || status=$?
# cfn-lint exits 2 for errors, 4 for warnings, 8 for informational findings (bit flags).
if (( status & 2 )); then
  echo "cfn-lint found errors" >&2
  exit 1
fi
echo "cfn-lint: no errors (exit status $status: warnings and notes above, if any)"
