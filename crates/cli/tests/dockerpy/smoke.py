"""docker-py (PyPI `docker`) against a berth daemon: argv[1] is the socket, argv[2] the image."""
import sys

import docker

sock, image = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url="unix://" + sock, timeout=60)

assert client.ping()
assert client.version()["ApiVersion"]
assert any(image in (i.tags or []) for i in client.images.list()), client.images.list()

# run to completion: output, then removal
out = client.containers.run(image, ["sh", "-c", "echo hello-py; echo err >&2"], remove=True)
assert out == b"hello-py\n", out

# a failing program raises ContainerError with its exit code
try:
    client.containers.run(image, ["sh", "-c", "exit 3"], remove=True)
    raise AssertionError("no ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e

# detached: logs, exec, attrs, stop, wait
c = client.containers.run(image, ["sh", "-c", "echo started; exec sleep 60"], detach=True,
                          name="py-detached", labels={"from": "docker-py"},
                          environment={"A": "b"})
c.reload()
assert c.status == "running", c.status
assert c.labels["from"] == "docker-py"
res = c.exec_run(["sh", "-c", "echo $A; exit 4"])
assert res.exit_code == 4 and res.output == b"b\n", res
for _ in range(50):
    if b"started" in c.logs():
        break
    import time
    time.sleep(0.1)
assert c.logs() == b"started\n", c.logs()
names = [x.name for x in client.containers.list()]
assert names == ["py-detached"], names
c.kill()
assert c.wait()["StatusCode"] == 137
c.remove()
assert client.containers.list(all=True) == []

# volumes
v = client.volumes.create("py-vol")
assert [x.name for x in client.volumes.list()] == ["py-vol"]
out = client.containers.run(image, ["sh", "-c", "echo v > /d/f; cat /d/f"],
                            volumes={"py-vol": {"bind": "/d", "mode": "rw"}}, remove=True)
assert out == b"v\n", out
v.remove()

# images
img = client.images.get(image)
img.tag("py-tag", "1")
assert "py-tag:1" in client.images.get("py-tag:1").tags
client.images.remove("py-tag:1")
try:
    client.images.get("py-tag:1")
    raise AssertionError("tag still there")
except docker.errors.ImageNotFound:
    pass
try:
    client.containers.get("nonexistent")
    raise AssertionError("found a container that does not exist")
except docker.errors.NotFound:
    pass
print("docker-py ok")
