#!/usr/bin/env bash
# The docker CLI's requests for the API corpus: docker CLI 28 (it negotiates the daemon's
# API version) against DOCKER_HOST. Commands that must fail (swarm, absent objects) are
# there for their answers. $WORK is a scratch directory.
set -u
D=${DOCKER:-/usr/local/bin/docker}
IMG=busybox:e2e
export DOCKER_BUILDKIT=0
try() { "$D" "$@" >/dev/null 2>&1 || true; }
run() { "$D" "$@" >/dev/null 2>&1 || { echo "docker $*: failed" >&2; exit 1; }; }

run version
run info
run images
run image inspect $IMG
run history $IMG
run run --rm $IMG sh -c 'echo hello; echo oops >&2'
run run --name c1 -d -e A=1 -l x=y -w /tmp $IMG sh -c 'echo out; echo err >&2; exec sleep 300'
run ps
run ps -a --filter label=x=y --filter status=running
run inspect c1
try exec c1 sh -c 'echo exec-out; exit 3'
run top c1
run stats --no-stream c1
run logs c1
run pause c1
run unpause c1
run rename c1 c2
run cp c2:/etc/passwd "$WORK/passwd"
run diff c2
run commit -c 'ENV B=2' -c 'CMD ["sh"]' -m 'a message' c2 committed:1
run image inspect committed:1
run images
run kill c2
run wait c2
run rm c2
run volume create v1
run volume ls
run volume inspect v1
run run --rm -v v1:/d $IMG sh -c 'echo data > /d/f'
run volume rm v1
run network create n1
run network ls
run network inspect n1
run run -d --name c3 --network n1 $IMG sleep 300
run network disconnect n1 c3
run network connect n1 c3
run rm -f c3
run network rm n1
try network create --scope swarm nswarm
try network create --ingress ningress
run tag $IMG other:tag
run rmi other:tag
run rmi committed:1
run system df
run container prune -f
run image prune -f
run volume prune -f
run network prune -f
try swarm leave --force
try node ls
try service ls
try secret ls
try config ls
run plugin ls
try plugin inspect absent
try inspect absent
try rm absent
try run --pull never --rm absent:image true
mkdir -p "$WORK/ctx"
printf 'FROM %s\nRUN echo to-out && echo to-err >&2\nENV X=1\nLABEL l=v\n' $IMG >"$WORK/ctx/Dockerfile"
run build -t built:1 "$WORK/ctx"
run build -t built:1 "$WORK/ctx"
run image inspect built:1
run rmi built:1
