#!/usr/bin/env bash
# Test and package the VS Code extension: its client wiring under node (test/), then the .vsix
# with vsce. Run by .ci/run; needs node and npm (and the npm registry for `npm ci`).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm test
out="${VSIX_OUT:-${TMPDIR:-/tmp}/policy-language.vsix}"
npx --no-install vsce package --skip-license -o "$out"
echo "packaged $out ($(wc -c < "$out") bytes)"
