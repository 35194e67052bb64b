#!/usr/bin/env bash
# Fuzzes a real `learnflow serve` against its own OpenAPI document with schemathesis
# (from PyPI, pinned): every documented operation gets generated valid and invalid
# requests, and every answer must match the document (status codes, content types,
# schemas), never be a 5xx, and never ignore authentication.
#
# Usage: scripts/api-fuzz.sh [path/to/learnflow]   (default: $CARGO_TARGET_DIR/debug/learnflow)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/learnflow}
VENV=${LEARNFLOW_SCHEMATHESIS_VENV:-$HOME/.cache/learnflow/schemathesis-4.32.5}
if [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
DIR=$(mktemp -d)
cleanup() {
    [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
LEARNFLOW_EMBEDDER=hash LEARNFLOW_RATE_LIMIT=100000 LEARNFLOW_RATE_BURST=100000 LEARNFLOW_INNGEST_DEV=true \
    "$BIN" --data-dir "$DIR/data" serve --listen 127.0.0.1:0 >"$DIR/out" 2>"$DIR/err" &
PID=$!
for _ in $(seq 1 300); do
    grep -q "listening on" "$DIR/out" 2>/dev/null && break
    sleep 0.1
done
ADDR=$(grep -o "http://[0-9.:]*" "$DIR/out")
TOKEN=$(grep "^lf_" "$DIR/out" | head -n 1)
# schemathesis keeps a cache in the working directory: keep it out of the repository.
cd "$DIR"
ST=("$VENV/bin/st" run "$ADDR/api/openapi.json" --url "$ADDR" -H "Authorization: Bearer $TOKEN"
    --max-examples "${LEARNFLOW_FUZZ_EXAMPLES:-30}" --seed 1 --no-color)
# Every operation but the upload, with every check.
"${ST[@]}" --checks all --exclude-name-regex "^POST /api/(documents|inngest/apps)$"
# The upload: any bytes are a valid `file` by the schema, but only documents are
# accepted (random bytes rightly get 415), so the "schema-valid request rejected" check
# does not apply to it; every other check does. The same goes for syncing an Inngest
# app: a well-formed URL where no app answers rightly gets 422.
"${ST[@]}" --checks all --exclude-checks positive_data_acceptance --include-name-regex "^POST /api/(documents|inngest/apps)$"
