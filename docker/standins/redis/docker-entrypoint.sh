#!/bin/sh
# Stand-in for the official image's entrypoint: options alone mean redis-server; as root, hand the
# working directory to redis and re-run as redis.
set -eu
case "${1:-redis-server}" in -*) set -- redis-server "$@";; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis .
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
exec "$@"
