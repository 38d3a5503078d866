"""docker-py (PyPI `docker`) against berth: the Engine API answers as dockerd's, as this client
sees them. argv: the daemon's socket, the local image, a registry's host:port (plain HTTP).

Each block is an item of issue 20: swarm answers, version-gated fields, queries read as Go
reads them, commit, the build API, image endpoints, plugins.
"""
import gzip
import io
import sys
import tarfile
import time

import docker

sock, image, reg = sys.argv[1:4]
url = "unix://" + sock
c = docker.DockerClient(base_url=url, timeout=120)  # docker-py's default API version (1.44)
v41 = docker.DockerClient(base_url=url, version="1.41", timeout=120)
v45 = docker.DockerClient(base_url=url, version="1.45", timeout=120)
NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm '
               'join" to connect this node to swarm and try again.')


def fails(status, words, fn, *a, **kw):
    """fn must raise docker's APIError with this status and these words in its message."""
    try:
        fn(*a, **kw)
    except docker.errors.APIError as e:
        assert e.status_code == status, (fn, e.status_code, e.explanation)
        assert words in (e.explanation or ""), (fn, e.explanation)
        return e
    raise AssertionError(f"{fn} did not fail")


# -- swarm: inactive, in dockerd's words -------------------------------------------------
assert c.swarm.leave(force=True) is True  # docker-py swallows the 503 of a forced leave
fails(503, "This node is not part of a swarm", c.api.leave_swarm)
for call in (c.api.inspect_swarm, c.api.nodes, c.api.services, c.api.tasks, c.api.secrets,
             c.api.configs, c.api.get_unlock_key):
    e = fails(503, NOT_MANAGER, call)
    assert e.explanation == NOT_MANAGER, e.explanation
fails(503, NOT_MANAGER, c.api.inspect_node, "anything")
fails(501, "swarm mode is not supported by berth", c.swarm.init,
      advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
fails(403, "cannot create a swarm scoped network when swarm is not active",
      c.networks.create, "py-swarm-net", scope="swarm")
fails(403, "Ingress network can only be global scope network",
      c.networks.create, "py-ingress-net", ingress=True)
net = c.networks.create("py-attachable", attachable=True)
assert net.attrs["Attachable"] is True and net.attrs["Scope"] == "local", net.attrs
net.remove()

# -- version-gated fields ------------------------------------------------------------------
old = v41.api.inspect_image(image)
assert {"Container", "ContainerConfig", "VirtualSize"} <= set(old), sorted(old)
assert old["ContainerConfig"]["Env"] is None and old["ContainerConfig"]["Hostname"] == "", old
mid = c.api.inspect_image(image)
assert "ContainerConfig" in mid and "VirtualSize" not in mid, sorted(mid)
new = v45.api.inspect_image(image)
# dockerd drops these two from 1.45 on; berth keeps them (docker-compose 1.29 negotiates the
# newest version and reads them): docs/api.md.
assert "ContainerConfig" in new and "Container" in new and "VirtualSize" not in new, sorted(new)
assert all("VirtualSize" in i for i in v41.api.images())
assert not any("VirtualSize" in i for i in c.api.images())

# -- queries read as Go reads them ---------------------------------------------------------
base = c.images.get(image)
ct = c.containers.run(image, ["sleep", "60"], detach=True, environment={"E": "1"})
t = time.monotonic()
s = c.api.stats(ct.id, stream=False)  # sends stream=False: one answer, not a stream
assert isinstance(s, dict) and s["id"] == ct.id, s
assert s["precpu_stats"]["system_cpu_usage"] > 0, s["precpu_stats"]  # two samples, as dockerd
assert time.monotonic() - t < 20
one = c.api.stats(ct.id, stream=False, one_shot=True)
assert isinstance(one, dict) and one["cpu_stats"]["online_cpus"] >= 1, one
r = c.api.get(c.api._url("/containers/{0}/stats", ct.id), params={"stream": 1, "one-shot": 1})
assert r.status_code == 400 and r.json()["message"] == "cannot have stream=true and one-shot=true"
stopped = c.containers.create(image, ["true"])
listed = lambda value: [x["Id"] for x in c.api.get(c.api._url("/containers/json"),
                                                   params={"all": value}).json()]
assert stopped.id in listed("True") and stopped.id in listed("1")
assert stopped.id not in listed("False") and stopped.id not in listed("no")
stopped.remove()

# -- commit: repeated changes, the parent; an image that was pulled ------------------------
img = ct.commit("py-commit", "1", changes=["ENV A=1", "ENV B=2", 'CMD ["sh"]'])
cfg = img.attrs["Config"]
assert {"E=1", "A=1", "B=2"} <= set(cfg["Env"]) and cfg["Cmd"] == ["sh"], cfg
assert img.attrs["Parent"] == base.id, img.attrs["Parent"]
assert img.attrs["Container"] == ct.id, img.attrs["Container"]
ct.remove(force=True)
c.images.remove("py-commit:1")

repo = reg + "/py-pulled"
base.tag(repo, "1")
assert not any("error" in m for m in c.api.push(repo, tag="1", stream=True, decode=True))
c.images.remove(repo + ":1")
pulled = c.images.pull(repo, tag="1")
ct = c.containers.run(repo + ":1", ["sh", "-c", "echo changed > /new"], detach=True)
assert ct.wait()["StatusCode"] == 0
img = ct.commit("py-from-pulled", "1")
assert img.attrs["Parent"] == pulled.id, (img.attrs["Parent"], pulled.id)
assert c.containers.run("py-from-pulled:1", ["cat", "/new"], remove=True) == b"changed\n"
ct.remove()
c.images.remove("py-from-pulled:1")

# -- images: distribution, load ------------------------------------------------------------
data = c.images.get_registry_data(repo + ":1")
assert data.id in pulled.attrs["RepoDigests"][0], (data.id, pulled.attrs["RepoDigests"])
assert data.has_platform("linux/" + pulled.attrs["Architecture"]), data.attrs
try:
    c.images.get_registry_data(reg + "/absent:1")
    raise AssertionError("an absent image has registry data")
except docker.errors.APIError as e:
    assert e.status_code == 404, e
try:
    c.images.load(b"this is not a tar archive")
    raise AssertionError("no ImageLoadError")
except docker.errors.ImageLoadError as e:
    assert "invalid image archive" in str(e), e


# -- the build API ---------------------------------------------------------------------------
def context(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, text in files.items():
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            t.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def build(ctx, **kw):
    lines = list(c.api.build(fileobj=io.BytesIO(ctx), custom_context=True, decode=True,
                             rm=True, **kw))
    errors = [m for m in lines if "error" in m]
    assert not errors, errors
    return "".join(m.get("stream", "") for m in lines)


df = (f"FROM {image}\nRUN echo to-out && echo to-err >&2 && grep py-host /etc/hosts\n"
      "ENV X=1\n")
ctx = gzip.compress(context({"Dockerfile": df}))
text = build(ctx, encoding="gzip", tag="py-built:1", extra_hosts={"py-host": "10.9.8.7"})
assert "to-out\n" in text and "\x1b[91mto-err\n\x1b[0m" in text, repr(text)
assert "10.9.8.7\tpy-host" in text, repr(text)
again = build(ctx, encoding="gzip", tag="py-built:1", extra_hosts={"py-host": "10.9.8.7"})
assert " ---> Using cache" in again, again
cold = build(ctx, encoding="gzip", tag="py-built:1", extra_hosts={"py-host": "10.9.8.7"},
             cache_from=["absent:image"])
assert "Using cache" not in cold and "to-out" in cold, cold
assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in \
    c.images.get("py-built:1").attrs["Config"]["Env"]
c.images.remove("py-built:1")

# -- plugins: an engine with none ----------------------------------------------------------
assert c.plugins.list() == []
try:
    c.plugins.get("absent")
    raise AssertionError("found a plugin")
except docker.errors.NotFound as e:
    assert 'plugin "absent" not found' in str(e), e
fails(501, "managed plugins are not supported by berth", c.api.plugin_privileges,
      "vieux/sshfs:latest")
print("docker-py api protocol ok")
