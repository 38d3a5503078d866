"""docker-py (PyPI `docker`) against berth: what its integration tests and docker-compose saw
differ from dockerd in containers — kill then remove, bind propagation, put_archive into a
created container's volume, HostConfig.Runtime, legacy links, MAC addresses, log drivers, diff.

argv: socket, image, a directory on a shared mount (for rshared binds), a unique prefix.
"""
import io
import os
import sys
import tarfile

import docker

from helpers import inside, namer

sock, image, shared, prefix = sys.argv[1:5]
client = docker.DockerClient(base_url="unix://" + sock, timeout=60)
api = client.api
name = namer(prefix)

# Kill (SIGKILL) answers once the container is dead: an inspect right after sees it exited,
# and a remove without force works.
c = client.containers.run(image, ["sleep", "60"], detach=True, name=name("kill"))
c.kill()
state = api.inspect_container(c.id)["State"]
assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 137, False), state
c.remove()

# Bind propagation, as docker-py's own tests create and check it.
for mode in ["rprivate", "rslave", "rshared"]:
    src = os.path.join(shared, mode)
    os.makedirs(src, exist_ok=True)
    ctr = api.create_container(
        image, ["sleep", "60"], name=name("prop-" + mode), volumes=["/b"],
        host_config=api.create_host_config(
            binds={src: {"bind": "/b", "ro": False, "propagation": mode}}))
    api.start(ctr)
    data = api.inspect_container(ctr)
    [m] = [m for m in data["Mounts"] if m["Destination"] == "/b"]
    assert (m["Source"], m["RW"], m["Propagation"]) == (src, True, mode), m
    assert data["HostConfig"]["Binds"] == [f"{src}:/b:rw,{mode}"], data["HostConfig"]["Binds"]
    line = [ln for ln in inside(client.containers.get(ctr["Id"]),
                                "cat /proc/self/mountinfo").splitlines()
            if ln.split(" ")[4] == "/b"]
    assert len(line) == 1, line
    tags = line[0].split(" - ")[0]
    expect = {"rprivate": (False, False), "rslave": (False, True), "rshared": (True, False)}
    assert ("shared:" in tags, "master:" in tags) == expect[mode], (mode, tags)
    api.remove_container(ctr, force=True)
# Without a propagation: rprivate, as dockerd reports it.
plain = client.containers.run(image, ["true"], volumes={shared: {"bind": "/b", "mode": "ro"}},
                              name=name("prop-default"), detach=True)
plain.wait()
plain.reload()
[m] = [m for m in plain.attrs["Mounts"] if m["Destination"] == "/b"]
assert (m["Propagation"], m["Mode"], m["RW"]) == ("rprivate", "ro", False), m
plain.remove()

# put_archive into a created (never started) container's declared volume: the image's files
# are there too (the volume is filled as dockerd fills it at create).
created = api.create_container(image, ["sh", "-c", "cat /data/in/hello.txt; ls /etc"],
                               name=name("archive"), volumes=["/data", "/etc"])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    body = b"from put_archive\n"
    info = tarfile.TarInfo("in/hello.txt")
    info.size = len(body)
    tar.addfile(info, io.BytesIO(body))
assert api.put_archive(created, "/data", buf.getvalue())
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    info = tarfile.TarInfo("added")
    info.size = 0
    tar.addfile(info, io.BytesIO(b""))
assert api.put_archive(created, "/etc", buf.getvalue())
api.start(created)
assert api.wait(created)["StatusCode"] == 0
logs = api.logs(created).decode()
assert logs.startswith("from put_archive\n"), logs
assert "passwd" in logs.split() and "added" in logs.split(), logs
api.remove_container(created, v=True)

# HostConfig.Runtime: the daemon's default runtime's name, or the one asked for.
ctr = api.create_container(image, ["true"], name=name("rt"))
assert api.inspect_container(ctr)["HostConfig"]["Runtime"] == "berth"
api.remove_container(ctr)
if os.path.exists("/usr/sbin/runc") or os.path.exists("/usr/bin/runc"):
    ctr = api.create_container(image, ["true"], name=name("runc"),
                               host_config=api.create_host_config(runtime="runc"))
    assert api.inspect_container(ctr)["HostConfig"]["Runtime"] == "runc"
    api.remove_container(ctr)

# Legacy links on the default bridge: the environment and /etc/hosts lines dockerd injects,
# then the link removed by its name.
srv = client.containers.run(image, ["sleep", "60"], detach=True, name=name("srv"),
                            ports={"80/tcp": None}, environment={"FOO": "bar", "HOME": "/z"})
srv.reload()
srv_ip = srv.attrs["NetworkSettings"]["IPAddress"]
linker = client.containers.run(image, ["sleep", "60"], detach=True, name=name("linker"),
                               links={name("srv"): "db-1"})
env = dict(line.split("=", 1) for line in inside(linker, "env").splitlines())
assert env["DB_1_NAME"] == f"/{name('linker')}/db-1", env
assert env["DB_1_PORT"] == f"tcp://{srv_ip}:80", env
assert env["DB_1_PORT_80_TCP_ADDR"] == srv_ip and env["DB_1_PORT_80_TCP_PROTO"] == "tcp", env
assert env["DB_1_ENV_FOO"] == "bar" and "DB_1_ENV_HOME" not in env, env
hosts = inside(linker, "cat /etc/hosts")
assert f"{srv_ip}\tdb-1 {srv.id[:12]} {name('srv')}" in hosts, hosts
linker.reload()
assert linker.attrs["HostConfig"]["Links"] == [f"/{name('srv')}:/{name('linker')}/db-1"], \
    linker.attrs["HostConfig"]["Links"]
api.remove_container(f"{name('linker')}/db-1", link=True)
linker.reload()
assert linker.attrs["HostConfig"]["Links"] is None, linker.attrs["HostConfig"]["Links"]
assert "db-1" not in inside(linker, "cat /etc/hosts")
srv.reload()
assert srv.status == "running", "the linked container stays"
try:
    api.remove_container(f"{name('linker')}/db-1", link=True)
    raise AssertionError("a removed link was removed again")
except docker.errors.NotFound:
    pass
try:
    api.remove_container(name("srv"), link=True)
    raise AssertionError("the container's own name was removed as a link")
except docker.errors.APIError as e:
    assert "cannot remove the default link name" in e.explanation, e
linker.remove(force=True)
srv.remove(force=True)

# Config.MacAddress (docker-py sends it there) and a network connect's MacAddress, applied.
mac = "02:42:ac:11:00:0a"
ctr = api.create_container(image, ["sleep", "60"], name=name("mac"), mac_address=mac)
api.start(ctr)
data = api.inspect_container(ctr)
assert data["NetworkSettings"]["MacAddress"] == mac, data["NetworkSettings"]
assert data["Config"]["MacAddress"] == mac
c = client.containers.get(ctr["Id"])
assert inside(c, "cat /sys/class/net/eth0/address").strip() == mac
net = client.networks.create(name("macnet"))
api.connect_container_to_network(ctr, net.id, mac_address="02:00:00:aa:bb:01")
assert inside(c, "cat /sys/class/net/eth1/address").strip() == "02:00:00:aa:bb:01"
created = api.create_container(image, ["sleep", "60"], name=name("mac-created"))
api.connect_container_to_network(created, net.id, mac_address="02:00:00:aa:bb:02")
api.start(created)
data = api.inspect_container(created)
assert data["NetworkSettings"]["Networks"][net.name]["MacAddress"] == "02:00:00:aa:bb:02"
c2 = client.containers.get(created["Id"])
assert "02:00:00:aa:bb:02" in inside(c2, "cat /sys/class/net/eth*/address")
c.remove(force=True)
c2.remove(force=True)
net.remove()
try:
    api.create_container(image, ["true"], mac_address="zz:zz")
    raise AssertionError("a bad MAC was taken")
except docker.errors.APIError as e:
    assert e.status_code == 400 and "invalid MAC address: zz:zz" in e.explanation, e

# An unknown log driver: docker-py's test accepts exactly dockerd's words.
try:
    api.create_container(image, ["true"], host_config=api.create_host_config(
        log_config=docker.types.LogConfig(type="asdf", config={})))
    raise AssertionError("an unknown log driver was taken")
except docker.errors.APIError as e:
    assert e.explanation == 'error looking up logging plugin asdf: plugin "asdf" not found', e
# The none driver keeps nothing to read.
quiet = client.containers.run(image, ["echo", "hi"], detach=True, name=name("nolog"),
                              log_config=docker.types.LogConfig(type="none"))
quiet.wait()
try:
    quiet.logs()
    raise AssertionError("logs of a none-driver container")
except docker.errors.APIError as e:
    assert e.status_code == 501, e
    assert e.explanation == "configured logging driver does not support reading", e
quiet.remove()

# diff: the container's own changes only, not the /etc files the engine writes.
d = client.containers.run(image, ["sh", "-c", "echo x > /f"], detach=True, name=name("diff"))
d.wait()
assert d.diff() == [{"Path": "/f", "Kind": 1}], d.diff()
d.remove()
d = client.containers.run(image, ["sh", "-c", "echo x >> /etc/passwd"], detach=True,
                          name=name("diff-etc"))
d.wait()
assert sorted((c["Path"], c["Kind"]) for c in d.diff()) == [("/etc", 0), ("/etc/passwd", 0)], \
    d.diff()
d.remove()

# A burst of kills: each answers with its container dead, each then removed without force.
burst = [client.containers.run(image, ["sleep", "60"], detach=True, name=name(f"k{i}"))
         for i in range(8)]
for c in burst:
    c.kill()
    assert api.inspect_container(c.id)["State"]["Status"] == "exited"
    c.remove()
assert not [c for c in client.containers.list(all=True) if c.name.startswith(prefix)], \
    client.containers.list(all=True)
print("docker-py containers ok")
