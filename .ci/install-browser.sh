#!/usr/bin/env bash
# Debian's chromium for the HTML report test (tests/test_diff_html_browser.py).
set -eu
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
# The HTML diff report test fails (not skips) in CI without it: say so here, where it can be fixed.
command -v chromium >/dev/null 2>&1 || { echo "error: chromium did not install; tests/test_diff_html_browser.py will fail" >&2; exit 1; }
