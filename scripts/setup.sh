#!/usr/bin/env bash
# Install what a fresh machine lacks: Debian packages (as root), the Python venv and its packages.
# Idempotent; `make` reruns it only when requirements.txt changes. The Asterisk chroot is installed
# on first use by `make up` / `make test` (asterisk/scripts/install-chroot.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v sox >/dev/null || need_apt+=(sox)
# Browser tests drive Debian's Chromium through Playwright; never `playwright install`.
command -v chromium >/dev/null || need_apt+=(chromium)
# The SIP security test runs Debian's fail2ban (its own server and config; it never touches the firewall).
command -v fail2ban-server >/dev/null || need_apt+=(fail2ban)
# The Kamailio edge in front of several nodes (make up NODES=2, tests/integration/test_edge.py).
command -v kamailio >/dev/null || need_apt+=(kamailio)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so ] || [ -e /usr/lib/aarch64-linux-gnu/kamailio/modules/db_postgres.so ] \
  || need_apt+=(kamailio-postgres-modules)
# The edge test with nodes on hosts of their own relays the session's Redis to the nodes' network.
command -v socat >/dev/null || need_apt+=(socat)
# The edge's TLS listener (phones outside the office).
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || [ -e /usr/lib/aarch64-linux-gnu/kamailio/modules/tls.so ] \
  || need_apt+=(kamailio-tls-modules)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # Debian's package starts its own Kamailio on *:5060 under systemd, where make up's Asterisk
    # listens: the stack runs its edge itself (stack/kamailio.py), so the system service stays off.
    if [[ " ${need_apt[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null; then
      systemctl disable --now kamailio >/dev/null 2>&1 || true
    fi
  else
    echo "missing Debian packages: ${need_apt[*]} (run as root, or: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "Python 3.11+ is required (found $("$PYTHON" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
# The end-of-turn model (Smart Turn v3.2) ships inside the pipecat-ai wheel: that file alone, into .venv/share.
.venv/bin/python -m aipbx.providers.local.install smart-turn >/dev/null
# The console's translations (locale/*/LC_MESSAGES/*.po -> .mo, generated, not in git): no GNU gettext needed.
.venv/bin/python -m stack.catalogs
