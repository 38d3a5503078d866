"""What the docker-py scripts of the tests share."""


def namer(prefix):
    """Names unique to this run: `prefix-NAME`."""
    return lambda n: f"{prefix}-{n}"


def inside(container, cmd):
    """`sh -c CMD` in a running container; its output (it must succeed)."""
    r = container.exec_run(["sh", "-c", cmd])
    assert r.exit_code == 0, (cmd, r)
    return r.output.decode()
