#!/usr/bin/env bash
# Installs the Debian packages the test-suite drives as real peers. Idempotent and quiet when all is present.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xterm >/dev/null || need+=(xterm)  # `retake agent go-live` shows its text window in xterm
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)  # tests/realtime/js drives the JS socket.io-client
command -v npm >/dev/null || need+=(npm)
# tests/e2e/test_edge_cache.py runs the shipped LL-HLS edge (docs/deploy/edge-nginx.conf); nginx is in /usr/sbin
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
# tests/restream/test_restream_e2e.py pushes to a real nginx-rtmp (bench/media.py compares against it too)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
