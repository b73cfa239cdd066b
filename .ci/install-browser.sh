#!/usr/bin/env bash
# Debian's chromium for the HTML report test (tests/test_diff_html_browser.py).
set -eu
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
