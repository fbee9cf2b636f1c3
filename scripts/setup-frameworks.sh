#!/usr/bin/env bash
# Part of `make setup`: the third-party frameworks the integration tests trace, at pinned versions,
# with no tracing code (test/frameworks/README.md). Heavy results are cached outside the clone,
# keyed by their pins, and linked into build/frameworks/:
#   build/frameworks/py/        a Python venv (pip, test/frameworks/python/requirements.txt)
#   test/frameworks/node/node_modules   npm ci (test/frameworks/node/package-lock.json)
#   build/frameworks/spring.jar Spring Boot app (Maven Central, test/frameworks/java/pom.xml)
#   build/frameworks/go-proxy   Go reverse proxy / client service (standard library only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf 'setup-frameworks: %s\n' "$*" >&2; }
cache=${SPANBRIDGE_CACHE_DIR:-$HOME/.cache/spanbridge}/frameworks
fw=test/frameworks
out=build/frameworks
mkdir -p "$cache" "$out"

need_pkgs=()
python3 -c 'import ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
command -v mvn >/dev/null || need_pkgs+=(maven)
command -v javac >/dev/null || need_pkgs+=(openjdk-17-jdk-headless)
[ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# nginx (issue: event-loop proxies) is started by the tests themselves with their own config; the
# packaged service, started by the install, is stopped.
if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then systemctl stop nginx || true; fi

key() { cat "$@" | sha256sum | cut -c1-16; }

# --- Python venv ---------------------------------------------------------------------------
pykey=$(key "$fw/python/requirements.txt" <(python3 --version))
venv=$cache/py-$pykey
if [ ! -f "$venv/.complete" ]; then
  log "creating the Python venv (flask, django, gunicorn, fastapi, uvicorn, uvloop, httpx, aiohttp, requests)"
  # built in place (a venv is not relocatable); .complete marks a finished install
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$fw/python/requirements.txt"
  touch "$venv/.complete"
fi
ln -sfn "$venv" "$out/py"

# --- More CPythons for asyncio linking (issue 14): pyenv's 3.10, 3.12 and 3.13, the asyncio frameworks
# only (FastAPI, uvicorn, uvloop, httpx, aiohttp at the versions pinned above), linked as
# build/frameworks/py310, py312 and py313. 3.12+ start aiohttp's tasks eagerly; the tests run the
# same services on each interpreter. 3.10 takes python/requirements-py310.txt: the same pins except
# the few releases that need 3.11+ (listed in that file).
for pyv in 3.10.13 3.12.1 3.13.0; do
  tag=py$(echo "$pyv" | cut -d. -f1,2 | tr -d .)
  pins=$fw/python/requirements.txt
  [ "$tag" = py310 ] && pins=$fw/python/requirements-py310.txt
  pybin=$HOME/.pyenv/versions/$pyv/bin/python3
  if [ ! -x "$pybin" ]; then
    log "no CPython $pyv at $pybin (pyenv install $pyv): the asyncio tests on it will fail"
    continue
  fi
  k=$(key "$pins" <("$pybin" --version))
  v=$cache/$tag-$k
  if [ ! -f "$v/.complete" ]; then
    log "creating the Python $pyv venv (fastapi, uvicorn, uvloop, httpx, aiohttp)"
    rm -rf "$v"
    "$pybin" -m venv "$v"
    "$v/bin/pip" install -q --disable-pip-version-check -c "$pins" fastapi uvicorn uvloop httpx aiohttp
    touch "$v/.complete"
  fi
  ln -sfn "$v" "$out/$tag"
done

# --- Node frameworks -------------------------------------------------------------------------
stamp=$fw/node/node_modules/.spanbridge-lock-hash
want=$(key "$fw/node/package-lock.json")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Node frameworks (express, fastify, axios)"
  (cd "$fw/node" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

# --- Spring Boot -------------------------------------------------------------------------------
jkey=$(key "$fw/java/pom.xml" $(find "$fw/java/src" -type f | sort) <(javac -version 2>&1))
if [ ! -f "$cache/spring-$jkey.jar" ]; then
  log "building the Spring Boot service (Maven; the first build downloads its dependencies)"
  work=$(mktemp -d "$cache/spring-work.XXXXXX")
  cp -r "$fw/java/pom.xml" "$fw/java/src" "$work/"
  (cd "$work" && mvn -B -q -DskipTests package)
  mv "$work/target/fw-spring.jar" "$cache/spring-$jkey.jar"
  rm -rf "$work"
fi
ln -sfn "$cache/spring-$jkey.jar" "$out/spring.jar"

# --- Go reverse proxy / client -----------------------------------------------------------------
(cd "$fw/go-proxy" && CGO_ENABLED=0 go build -o "$root/$out/go-proxy" .)
log "frameworks ready"
