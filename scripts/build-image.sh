#!/usr/bin/env bash
# Builds the tcpcryptd container image (deploy/Containerfile) from the
# project's own .deb.
#
#   ./scripts/build-image.sh [--context-only] [--context DIR] [--tag IMAGE]
#
# Builds the package with scripts/build-deb.sh, lays out the build context in
# DIR (default build/image): the Containerfile and the package as
# tcpcryptd.deb, the name the Containerfile COPYs. Then runs the first of
# $CONTAINER_ENGINE, podman, docker or buildah that exists:
#   ENGINE build -t IMAGE DIR        (IMAGE default: tcpcryptd:VERSION)
# --context-only stops after the context and prints its directory on the last
# line (for machines without a container engine, and for the deploy tests).
set -euo pipefail
cd "$(dirname "$0")/.."

context=build/image
tag=
only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --context-only) only=1 ;;
    --context) shift; context=${1:?--context needs a directory} ;;
    --tag) shift; tag=${1:?--tag needs an image name} ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deb=$(./scripts/build-deb.sh "$work/dist" | tail -n1)
mkdir -p "$context"
install -m 0644 deploy/Containerfile "$context/Containerfile"
install -m 0644 "$deb" "$context/tcpcryptd.deb"
if [ "$only" = 1 ]; then
  echo "build-image: context ready in $context" >&2
  echo "$context"
  exit 0
fi

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  for e in podman docker buildah; do
    if command -v "$e" >/dev/null 2>&1; then engine=$e; break; fi
  done
fi
if [ -z "$engine" ]; then
  echo "build-image: no container engine (podman, docker or buildah); the context is in $context:" >&2
  echo "  podman build -t tcpcryptd $context" >&2
  exit 1
fi
if [ -z "$tag" ]; then
  version=$(dpkg-deb -f "$context/tcpcryptd.deb" Version)
  tag="tcpcryptd:${version//[~+]/-}"
fi
if [ "$engine" = buildah ]; then
  buildah bud -t "$tag" "$context"
else
  "$engine" build -t "$tag" "$context"
fi
echo "$tag"
