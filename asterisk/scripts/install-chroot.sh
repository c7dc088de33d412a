#!/usr/bin/env bash
# Install Asterisk 22 from Debian sid into a chroot (Debian 12 has no asterisk package).
# The chroot is cached at $AST_CHROOT (default /var/cache/aipbx/asterisk-sid) and reused
# between runs; it is verified (asterisk -V reports major 22) before reuse.
set -euo pipefail
CHROOT=${AST_CHROOT:-/var/cache/aipbx/asterisk-sid}
WANT_MAJOR=${AST_WANT_MAJOR:-22}
PKGS=asterisk,asterisk-modules,asterisk-core-sounds-en,asterisk-moh-opsound-wav,ca-certificates

verify() {
  [ -x "$CHROOT/usr/sbin/asterisk" ] || return 1
  local v
  v=$(chroot "$CHROOT" /usr/sbin/asterisk -V 2>/dev/null) || return 1
  case "$v" in "Asterisk $WANT_MAJOR."*) echo "$v"; return 0;; esac
  echo "unexpected Asterisk version in $CHROOT: $v (want $WANT_MAJOR.x)" >&2
  return 1
}

if verify >/dev/null 2>&1; then
  echo "asterisk chroot ok: $(verify) at $CHROOT"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "installing the Asterisk chroot needs root (debootstrap, chroot)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }

tmp="$CHROOT.tmp.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$CHROOT")"
echo "debootstrap: Debian sid + asterisk into $CHROOT (about a minute, ~500 MB)"
debootstrap --variant=minbase --include="$PKGS" sid "$tmp" http://deb.debian.org/debian >"$tmp.log" 2>&1 \
  || { echo "debootstrap failed; see $tmp.log" >&2; tail -20 "$tmp.log" >&2; exit 1; }
rm -rf "$CHROOT"
mv "$tmp" "$CHROOT"
mv "$tmp.log" "$CHROOT.debootstrap.log"
verify
