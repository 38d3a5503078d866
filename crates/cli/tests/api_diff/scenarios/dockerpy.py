"""docker-py's requests for the API corpus: argv[1] is the daemon's socket (DOCKER_HOST's),
argv[2] the image. docker-py (PyPI) negotiates the daemon's version (`auto`)."""
import gzip
import io
import sys
import tarfile

import docker

sock, image = sys.argv[1], sys.argv[2]
c = docker.DockerClient(base_url="unix://" + sock, version="auto", timeout=120)
api = c.api


def expect(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc:
        return
    raise AssertionError(f"{fn} did not raise {exc}")


assert c.ping()
c.version()
c.info()
c.images.list()
c.images.get(image)
c.containers.run(image, ["sh", "-c", "echo hi; echo err >&2"], remove=True)
ct = c.containers.run(image, ["sleep", "300"], detach=True, name="py1", labels={"a": "b"},
                      environment={"E": "1"})
ct.reload()
ct.exec_run(["sh", "-c", "echo x; echo y >&2"])
api.stats("py1", stream=False)
ct.logs()
ct.stop(timeout=1)
ct.wait()
img = ct.commit("pycommit", "v1", changes=["ENV A=1", 'CMD ["sh"]'], message="m")
c.images.get("pycommit:v1")
ct.remove()
c.images.remove("pycommit:v1")
v = c.volumes.create("pyvol", labels={"k": "v"})
c.volumes.list()
v.remove()
n = c.networks.create("pynet", attachable=True, labels={"k": "v"})
c.networks.list(names=["pynet"])
n.remove()
expect(docker.errors.APIError, c.networks.create, "pyswarm", scope="swarm")
expect(docker.errors.APIError, c.networks.create, "pyingress", ingress=True)
c.swarm.leave(force=True)
expect(docker.errors.APIError, api.inspect_swarm)
expect(docker.errors.APIError, api.nodes)
expect(docker.errors.APIError, api.services)
expect(docker.errors.APIError, api.tasks)
expect(docker.errors.APIError, api.secrets)
expect(docker.errors.APIError, api.configs)
c.plugins.list()
expect(docker.errors.NotFound, c.plugins.get, "absent")
expect(docker.errors.ImageLoadError, c.images.load, b"this is not a tar archive")


def context(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


df = f"FROM {image}\nRUN echo out && echo err >&2 && grep h1 /etc/hosts\nENV X=1\n"
ctx = gzip.compress(context({"Dockerfile": df}))
c.images.build(fileobj=io.BytesIO(ctx), custom_context=True, encoding="gzip", tag="pybuilt:1",
               extra_hosts={"h1": "10.9.8.7"})
c.images.build(fileobj=io.BytesIO(ctx), custom_context=True, encoding="gzip", tag="pybuilt:1",
               extra_hosts={"h1": "10.9.8.7"}, cache_from=["absent:cache"])
c.images.get("pybuilt:1")
c.images.remove("pybuilt:1")
c.containers.prune()
c.images.prune()
print("scenario ok")
