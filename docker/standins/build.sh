#!/usr/bin/env bash
# Stand-in base images for machines that cannot pull from a registry (this project's development and
# CI machines). Each is tagged with the name a production Dockerfile or compose.yaml uses, so the
# same files build here and on a host with a registry; nothing production-side names a stand-in.
#
#   debian:sid-slim             debootstrap --variant=minbase sid, `docker import`ed          sid/
#   python:3.11-slim-bookworm   Debian 12 + its own Python 3.11 (python, python -m venv)   python/
#   postgres:15-bookworm        Debian 12's PostgreSQL 15 + the entrypoint subset we use  postgres/
#   redis:7-bookworm            Debian 12's Redis 7 + the entrypoint subset we use        redis/
#
# The Debian root file systems come from debootstrap (tagged aipbx-standin/debian:bookworm and :sid,
# no production names). Root file systems are cached as tarballs in $AIPBX_STANDIN_CACHE (refreshed after
# $AIPBX_STANDIN_MAX_AGE_DAYS days, sid moves); an image is rebuilt only when its recipe changed
# (the hash of its directory, the host's CA bundle and the image it is built from). An image under one of these names that is not
# a stand-in (pulled from a registry) is never replaced.
#
# Needs root (debootstrap), a running dockerd and the network to Debian's mirror.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${AIPBX_STANDIN_CACHE:-/var/cache/aipbx/docker}
MAX_AGE_DAYS=${AIPBX_STANDIN_MAX_AGE_DAYS:-14}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NICE=(nice -n "${AIPBX_BUILD_NICE:-10}")
# The machine's trust store: its HTTPS traffic may pass a TLS-inspecting proxy whose CA only the host
# trusts. The Python stand-in trusts the same CAs, so pip in a build reaches PyPI as pip on the host.
HOST_CA=${AIPBX_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
hash_of() { (cd "$HERE" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

say() { echo "standins: $*"; }

# A stand-in is recorded by a second tag, aipbx-standin/recipe-<name>:<recipe hash>, on the same
# image (a label would be inherited by every image built FROM it).
record_of() { echo "aipbx-standin/recipe-$(echo "$1" | tr ':/' '--')"; }
id_of() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

current() {  # current TAG RECIPE: 0 when TAG is that recipe's stand-in, or a real image (kept)
  local id record
  id=$(id_of "$1")
  [ -n "$id" ] || return 1
  record=$(record_of "$1")
  if [ -z "$(docker images --quiet --no-trunc "$record" | grep -Fx "$id")" ]; then
    say "$1 exists and is not a stand-in (pulled from a registry?): left as it is"
    return 0
  fi
  [ "$(id_of "$record:$2")" = "$id" ]
}

remember() {  # remember TAG RECIPE: record TAG as this recipe's stand-in, forget older recipes
  local record old
  record=$(record_of "$1")
  for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "$record"); do
    [ "$old" = "$record:$2" ] || docker rmi "$old" >/dev/null
  done
  docker tag "$1" "$record:$2"
}

rootfs() {  # rootfs SUITE: path of a cached minbase tarball, made or refreshed when needed
  local suite=$1 tar="$CACHE/debian-$1-minbase.tar"
  mkdir -p "$CACHE"
  if [ -s "$tar" ] && [ -z "$(find "$tar" -mtime +"$MAX_AGE_DAYS")" ]; then
    echo "$tar"; return
  fi
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  local dir
  dir=$(mktemp -d "$CACHE/rootfs-$suite.XXXXXX")
  say "debootstrap $suite (minbase) ..." >&2
  if ! "${NICE[@]}" debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >"$dir.log" 2>&1; then
    tail -20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; echo "debootstrap $suite failed" >&2; exit 1
  fi
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  "${NICE[@]}" tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
  rm -rf "$dir" "$dir.log"
  echo "$tar"
}

import() {  # import SUITE TAG
  local suite=$1 tag=$2 tar recipe
  tar=$(rootfs "$suite")
  recipe=$(echo "$(hash_of build.sh) $(stat -c %Y "$tar")" | sha256sum | cut -c1-16)
  current "$tag" "$recipe" && return 0
  docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' "$tar" "$tag" >/dev/null
  remember "$tag" "$recipe"
  say "$tag imported from debootstrap $suite"
}

build() {  # build DIR TAG: DIR's Dockerfile, FROM an image imported above, with the host's CA bundle
  local dir=$1 tag=$2 from recipe context
  from=$(sed -n 's/^FROM //p' "$HERE/$dir/Dockerfile")
  recipe=$(echo "$(hash_of "$dir") $(sha256sum <"$HOST_CA") $(docker image inspect --format '{{.Id}}' "$from")" \
    | sha256sum | cut -c1-16)
  current "$tag" "$recipe" && return 0
  say "building $tag ..."
  context=$(mktemp -d)
  cp -r "$HERE/$dir/." "$context/"
  cp "$HOST_CA" "$context/host-ca-certificates.crt"
  docker build --quiet --network host -t "$tag" "$context" >/dev/null
  rm -rf "$context"
  remember "$tag" "$recipe"
  say "$tag built"
}

docker info >/dev/null 2>&1 || { echo "no Docker engine answers (start dockerd first)" >&2; exit 1; }
import bookworm aipbx-standin/debian:bookworm
import sid aipbx-standin/debian:sid
build sid debian:sid-slim
build python python:3.11-slim-bookworm
build postgres postgres:15-bookworm
build redis redis:7-bookworm
say "ready"
