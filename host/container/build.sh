#!/usr/bin/env bash
# Builds the static provgate binary and the `provgate serve` image
# (host/container/Containerfile) with podman, then runs the image and checks
# it the way an orchestrator would: /healthz, /readyz, one verdict, the user
# it runs as, SIGHUP, SIGTERM. Installs what is missing (the musl target,
# musl-tools for ring's C code, podman). Exits non-zero naming the step
# that failed.
#
#   host/container/build.sh              # build everything, then run the checks
#   host/container/build.sh --no-build   # reuse the binary already built
#
# CARGO_TARGET_DIR is honoured; PORT picks the port the checks use.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target=x86_64-unknown-linux-musl
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
binary="$target_dir/$target/release/provgate"
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'build.sh: FAILED: %s\n' "$*" >&2; exit 1; }
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "$@" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; } \
    || fail "apt-get install $*"
}

step "tools"
command -v podman >/dev/null || apt_install podman
command -v curl >/dev/null || apt_install curl
command -v file >/dev/null || apt_install file
podman --version

if [ "$build" = 1 ]; then
  step "static binary ($target)"
  rustup target list --installed | grep -qx "$target" || rustup target add "$target" || fail "rustup target add $target"
  command -v musl-gcc >/dev/null || apt_install musl-tools
  started=$(date +%s)
  (cd "$repo" && cargo build --release --locked -p provgate --target "$target") || fail "cargo build for $target"
  echo "built in $(( $(date +%s) - started )) s"
fi
[ -x "$binary" ] || fail "no binary at $binary (build it, or drop --no-build)"
file "$binary" | grep -q "statically linked\|static-pie linked" || fail "$binary is not statically linked: $(file "$binary")"
version="$("$binary" --version)"
echo "$version; $(stat -c %s "$binary") bytes"
semver="$(echo "$version" | awk '{print $2}')"

step "image"
context="$(mktemp -d)"
container=""
cleanup() {
  [ -n "$container" ] && podman rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$context"
}
trap cleanup EXIT
cp "$binary" "$context/provgate"
cp /etc/ssl/certs/ca-certificates.crt "$context/" || fail "no CA bundle at /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)"
mkdir -m 0700 "$context/home"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
podman build --quiet -f "$here/Containerfile" \
  --build-arg VERSION="$semver" --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "provgate:$semver" -t provgate:latest "$context" >/dev/null || fail "podman build"
echo "provgate:$semver, $(podman image inspect --format '{{.Size}}' "provgate:$semver") bytes"
[ "$(podman image inspect --format '{{.Config.User}}' "provgate:$semver")" = "65532:65532" ] || fail "the image does not run as 65532"

step "run"
port="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
url="http://127.0.0.1:$port"
log="$context/serve.log"
# Where podman cannot start a container (a sandbox that refuses crun's
# setrlimit, as the machines this was written on do), the image's own
# filesystem is run instead: mounted, chrooted into, as the image's user
# with the image's environment. Same bytes, same user, no podman runtime.
mode=podman
started=$(date +%s%N)
if ! container="$(podman run -d --network host "provgate:$semver" serve --listen "127.0.0.1:$port" 2>"$log")"; then
  echo "podman run failed: $(tail -n 1 "$log")"
  echo "running the image's filesystem under chroot as 65532 instead"
  container=""
  mode=chroot
  root="$(podman image mount "provgate:$semver")" || fail "podman image mount"
  env_args=()
  while IFS= read -r line; do env_args+=("$line"); done < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "provgate:$semver" | sed '/^$/d')
  env -i "${env_args[@]}" chroot --userspec=65532:65532 "$root" /provgate serve --listen "127.0.0.1:$port" >"$log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true; podman image unmount "provgate:$semver" >/dev/null 2>&1 || true; cleanup' EXIT
fi
logs() { if [ "$mode" = podman ]; then podman logs "$container" 2>&1; else cat "$log"; fi; }
running() { if [ "$mode" = podman ]; then [ "$(podman inspect --format '{{.State.Running}}' "$container")" = true ]; else kill -0 "$pid" 2>/dev/null; fi; }
for _ in $(seq 1 100); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  running || { logs >&2; fail "the server exited"; }
  sleep 0.1
done
health="$(curl -fsS "$url/healthz")" || { logs >&2; fail "/healthz did not answer within 10 s"; }
echo "/healthz after $(( ($(date +%s%N) - started) / 1000000 )) ms ($mode): $health"
[ "$health" = '{"status":"ok"}' ] || fail "/healthz said $health"

ready="$(curl -fsS "$url/readyz")" || fail "/readyz"
echo "/readyz: $ready"
echo "$ready" | grep -Eq '"policy":"sha256:[0-9a-f]{64}"' || fail "/readyz names no policy digest"

body='{"mode":"log-only","subject":{"reference":"registry.example/molecule-ai/app:old","digest":"sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09","labels":{}}}'
verdict="$(curl -sS -w '\n%{http_code}' -d "$body" "$url/v1/verify")" || fail "POST /v1/verify"
status="${verdict##*$'\n'}"
verdict="${verdict%$'\n'*}"
echo "POST /v1/verify: HTTP $status, $(echo "$verdict" | head -c 160)…"
[ "$status" = 200 ] || fail "POST /v1/verify answered $status"
echo "$verdict" | grep -q '"status":"rejected"' || fail "an unlabeled image was not rejected"
echo "$verdict" | grep -q '"allowed":true' || fail "log-only did not allow"
curl -fsS "$url/openapi.json" | grep -q '"openapi": "3.1.0"' || fail "/openapi.json"

if [ "$mode" = podman ]; then
  user="$(podman top "$container" huser | tail -n 1)"
else
  user="$(ps -o uid= -p "$(pgrep -P "$pid" provgate || echo "$pid")" | tr -d ' ')"
fi
echo "the server's user on the host: $user"
[ "$user" = 65532 ] || fail "the server runs as '$user', not 65532"

if [ "$mode" = podman ]; then podman kill --signal HUP "$container" >/dev/null; else kill -HUP "$pid"; fi || fail "SIGHUP"
for _ in $(seq 1 50); do logs | grep -q "nothing to reload" && break; sleep 0.1; done
logs | grep -q "nothing to reload" || { logs >&2; fail "SIGHUP was not logged"; }
echo "SIGHUP: $(logs | grep "nothing to reload" | tail -n 1)"

if [ "$mode" = podman ]; then
  podman stop --time 10 "$container" >/dev/null || fail "podman stop"
  code="$(podman inspect --format '{{.State.ExitCode}}' "$container")"
else
  kill -TERM "$pid"
  code=0
  wait "$pid" || code=$?
fi
echo "SIGTERM: exit $code"
[ "$code" = 0 ] || { logs >&2; fail "exit $code after SIGTERM"; }
echo "request lines logged: $(logs | grep -c 'request_id=')"

step "ok: provgate:$semver built from $binary and checked"
