#!/usr/bin/env bash
# Install Undertow as a systemd service: user, code + venv in $PREFIX, config and token in $ETC, the unit.
# Idempotent: running it again updates the code and unit and keeps the config, keys and token.
#
#   sudo scripts/install.sh [--dry-run] [--prefix /opt/undertow] [--etc /etc/undertow] [--no-start]
#
# --dry-run prints every action without doing any (no root needed). The token is never an argument:
# put it in $ETC/telegram_bot_token (mode 0600, root) yourself; see docs/RUNBOOK.md.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/undertow
ETC=/etc/undertow
UNIT_DIR=/etc/systemd/system
SERVICE_USER=undertow
PYTHON="${PYTHON:-python3}"
DRY=0
START=1

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --prefix) PREFIX="$2"; shift ;;
        --etc) ETC="$2"; shift ;;
        --unit-dir) UNIT_DIR="$2"; shift ;;
        --user) SERVICE_USER="$2"; shift ;;
        --no-start) START=0 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# Every change goes through run: printed, and executed unless --dry-run.
run() {
    printf '+ %s\n' "$*"
    if [ "$DRY" -eq 0 ]; then "$@"; fi
}

if [ "$DRY" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or with --dry-run to see what it would do)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "install.sh: Undertow needs Python 3.11 or newer ($PYTHON)" >&2
    exit 1
fi

# 1. a system user with no login and no home of its own
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    echo "= user $SERVICE_USER exists"
else
    run useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        "$SERVICE_USER"
fi

# 2. the code and its virtual environment (root-owned: the service cannot rewrite its own code)
run install -d -m 0755 -o root -g root "$PREFIX"
run cp -a "$SRC/engine" "$SRC/actors" "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/config.toml" "$SRC/docs" "$PREFIX/"
if [ -x "$PREFIX/.venv/bin/python" ]; then
    echo "= venv $PREFIX/.venv exists"
else
    run "$PYTHON" -m venv "$PREFIX/.venv"
fi
run "$PREFIX/.venv/bin/python" -m pip install -q --upgrade "$PREFIX"

# 3. configuration: written once, never overwritten (the operator edits it)
run install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
if [ -e "$ETC/config.toml" ]; then
    echo "= $ETC/config.toml kept"
else
    # the packaged defaults, with the runtime directory systemd creates (RuntimeDirectory=undertow, 0700)
    run install -m 0640 -o root -g "$SERVICE_USER" "$SRC/config.toml" "$ETC/config.toml"
    run sed -i 's|^run_dir = .*|run_dir = "/run/undertow"     # systemd RuntimeDirectory, mode 0700|' "$ETC/config.toml"
fi
if [ -e "$ETC/telegram_bot_token" ]; then
    run chmod 0600 "$ETC/telegram_bot_token"
    run chown root:root "$ETC/telegram_bot_token"
else
    echo "= no $ETC/telegram_bot_token: Telegram alerts stay off until you create it (mode 0600)"
    run install -m 0600 -o root -g root /dev/null "$ETC/telegram_bot_token"
fi

# 4. the unit
run install -m 0644 "$SRC/scripts/undertow.service" "$UNIT_DIR/undertow.service"
if [ "$PREFIX" != /opt/undertow ] || [ "$ETC" != /etc/undertow ] || [ "$SERVICE_USER" != undertow ]; then
    run sed -i -e "s|/opt/undertow|$PREFIX|g" -e "s|/etc/undertow|$ETC|g" \
        -e "s|^User=.*|User=$SERVICE_USER|" -e "s|^Group=.*|Group=$SERVICE_USER|" "$UNIT_DIR/undertow.service"
fi
# compile the numba kernels once, as the service will find them (a cold start would spend ~40 s of it
# inside the supervisor's start-up allowance)
run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" /var/lib/undertow
run runuser -u "$SERVICE_USER" -- env UNDERTOW_NUMBA_CACHE=/var/lib/undertow/numba-cache \
    "$PREFIX/.venv/bin/python" -m engine.warmup
run systemctl daemon-reload
run systemctl enable undertow.service
if [ "$START" -eq 1 ]; then
    run systemctl restart undertow.service
fi
echo "done: journalctl -u undertow -f; curl -s 127.0.0.1:9464/health"
