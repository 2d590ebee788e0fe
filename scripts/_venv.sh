# Sourced by scripts/test and scripts/demo: make sure $VENV exists with Undertow installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Undertow needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1))" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
if [ ! -f "$VENV/.undertow-installed" ] || [ pyproject.toml -nt "$VENV/.undertow-installed" ]; then
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    touch "$VENV/.undertow-installed"
fi
