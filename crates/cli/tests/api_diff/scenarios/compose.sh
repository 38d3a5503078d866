#!/usr/bin/env bash
# docker-compose 1.29's (Debian's) requests for the API corpus: up, ps, a second up after a
# change to a service (it recreates it, reading the old image's ContainerConfig), logs,
# down. DOCKER_HOST names the daemon.
set -eu
cd "$(dirname "$0")/compose"
dc() { docker-compose -p cdiff "$@"; }
dc up -d
dc ps
MODE=two dc up -d
dc logs
dc down -v --rmi local
