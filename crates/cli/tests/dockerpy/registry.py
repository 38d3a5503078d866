"""docker-py against a berth daemon and a real registry with htpasswd auth.

argv: socket, image (local), registry host:port, user, password.
"""
import sys

import docker

sock, image, reg, user, password = sys.argv[1:6]
client = docker.DockerClient(base_url="unix://" + sock, timeout=120)

r = client.login(username=user, password=password, registry=reg)
assert r["Status"] == "Login Succeeded", r

try:
    client.login(username=user, password="wrong", registry=reg, reauth=True)
    raise AssertionError("a wrong password logged in")
except docker.errors.APIError as e:
    assert "401" in str(e), e

repo = reg + "/py"
assert client.images.get(image).tag(repo, "1")
auth = {"username": user, "password": password}
events = list(client.images.push(repo, tag="1", auth_config=auth, stream=True, decode=True))
assert not any("error" in e for e in events), events
aux = [e["aux"] for e in events if "aux" in e]
assert aux and aux[0]["Tag"] == "1" and aux[0]["Digest"].startswith("sha256:"), events
digest = aux[0]["Digest"]

client.images.remove(repo + ":1")
img = client.images.pull(repo, tag="1", auth_config=auth)
assert repo + ":1" in img.tags, img.tags
assert repo + "@" + digest in img.attrs["RepoDigests"], img.attrs["RepoDigests"]
out = client.containers.run(repo + ":1", ["echo", "pulled-by-py"], remove=True)
assert out == b"pulled-by-py\n", out

try:
    client.images.pull(repo, tag="missing", auth_config=auth)
    raise AssertionError("a missing tag pulled")
except docker.errors.NotFound as e:
    assert "not found" in str(e), e
print("docker-py registry ok")
