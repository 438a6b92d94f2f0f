#!/usr/bin/env bash
# The REST API against its OpenAPI document: schemathesis (from PyPI, pinned with what it
# runs on in .ci/schemathesis/requirements.txt) sends generated requests, valid and
# invalid, and other methods on each route, to the example server on the local platform
# sandbox, signed in with accounts connected on every platform, and fails on any 5xx, any
# status the document does not list (405 for another method), and any body, content type
# or header that does not match it.
#
#   .ci/schemathesis.sh
#
# SCHEMATHESIS_MAX_EXAMPLES (default 100) bounds the generated examples per operation and
# data generation method; SCHEMATHESIS_SEED (default fixed) makes a run repeatable, and
# another seed explores further; SCHEMATHESIS_ARGS adds arguments (split on spaces, e.g.
# "--cassette-path /tmp/requests.yaml"); SCHEMATHESIS_VENV is where the tool is installed
# (default: under the cargo target directory, reused while it holds the pinned set);
# SCHEMATHESIS_SERVER is a built example server binary to run (default: built here).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/integrations-target}"
here=.ci/schemathesis
venv="${SCHEMATHESIS_VENV:-$CARGO_TARGET_DIR/schemathesis-venv}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-1130}"

started=$(date +%s)
# The pinned set of $here/requirements.txt, installed once into the venv.
if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "schemathesis: installing $(grep '^schemathesis==' "$here/requirements.txt") in $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

# The example server as the test suite builds it (cargo test builds the binaries its
# tests run, with the test suite's features): after `cargo test --workspace` nothing is
# compiled again. SCHEMATHESIS_SERVER names another build of it instead.
server="${SCHEMATHESIS_SERVER:-}"
if [ -z "$server" ]; then
  cargo test --workspace --no-run --quiet
  server="$CARGO_TARGET_DIR/debug/server"
fi

work="$(mktemp -d)"
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

: > "$work/server.log"
# Every platform on the sandbox (no real credentials), a new SQLite store and key in a
# temporary directory, any free port.
env -u DATABASE_URL -u PROVIDERS_FILE -u SESSION_SECRET \
  -u INSTAGRAM_CLIENT_ID -u TIKTOK_CLIENT_KEY -u REDDIT_CLIENT_ID -u ONLYFANS_API_KEY \
  INTEGRATIONS_SERVER_DIR="$work/data" PORT=0 METRICS=false RUST_LOG=warn \
  TOKEN_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
  "$server" > "$work/server.log" 2>&1 &
server_pid=$!
base=
for _ in $(seq 1 300); do
  base="$(sed -n 's|^server: open \(http://127\.0\.0\.1:[0-9]*\)/integrations$|\1|p' "$work/server.log")"
  [ -n "$base" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.log" >&2
    echo "schemathesis: the example server did not start" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/server.log" >&2; echo "schemathesis: no server URL" >&2; exit 1; }

# Sign in as user 1 and connect two sandbox accounts per platform: the session cookie
# authenticates every generated request, and the routes naming an account also meet these.
prepared="$("$venv/bin/python" "$here/prepare.py" "$base")"
cookie="$(sed -n 1p <<<"$prepared")"
accounts="$(sed -n 2p <<<"$prepared")"

echo "schemathesis: $base/api/integrations/openapi.json, $max_examples examples per operation and method, seed $seed"
status=0
(
  hooks="$(cd "$here" && pwd)"
  cd "$work"
  PYTHONPATH="$hooks" SCHEMATHESIS_HOOKS=hooks INTEGRATIONS_ACCOUNTS="$accounts" \
    "$venv/bin/schemathesis" run \
    "$base/api/integrations/openapi.json" \
    --base-url "$base/api/integrations" \
    --experimental openapi-3.1 \
    --header "Cookie: $cookie" \
    --header "Sec-Fetch-Site: same-origin" \
    --generation-with-security-parameters false \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --data-generation-method all \
    --experimental coverage-phase \
    --experimental-no-failfast \
    --hypothesis-max-examples "$max_examples" \
    --hypothesis-seed "$seed" \
    --hypothesis-database none \
    --hypothesis-suppress-health-check all \
    --request-timeout 10000 \
    --schemathesis-io-telemetry false \
    ${SCHEMATHESIS_ARGS:-}
) || status=$?

if [ "$status" -ne 0 ]; then
  echo "schemathesis: the server's log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
echo "schemathesis: finished in $(( $(date +%s) - started )) s"
exit "$status"
