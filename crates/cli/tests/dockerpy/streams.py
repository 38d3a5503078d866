"""Streams through docker-py (PyPI `docker`) and through CLIs on a terminal, against a daemon.

usage: streams.py SOCKET IMAGE CHECK [ARGS...], CHECK one of:
  save-load      load_image(get_image(IMAGE)) (a chunked body fed from the save) while /_ping
                 is timed; every ping must answer within a second
  attach-logs    attach(logs=True, stream=False) of an exited container: its log, then EOF
  detach         the detach keys (default, detachKeys=, an exec's DetachKeys) end an
                 attachment; the container and the exec go on
  exec-framing   an exec made with a tty and started without one comes multiplexed
  cli-detach KEYS CODE CLI ARGS...  runs `CLI ARGS...` on a terminal, types KEYS (an
                 escaped string such as '\\x18'), and expects it to detach within seconds,
                 exiting with CODE (the docker CLI's: 1 and "read escape sequence" for
                 attach and exec, 0 and nothing for run and start)
Prints "ok CHECK" on success; any failure raises.
"""
import os
import pty
import select
import socket
import sys
import threading
import time

import docker

sock_path, image, check = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
client = docker.DockerClient(base_url="unix://" + sock_path, timeout=30)
api = client.api
unique = "%d-%d" % (os.getpid(), int(time.time() * 1000) % 100000)


def ping_once():
    """One /_ping over a fresh connection; its time in seconds."""
    start = time.monotonic()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    return time.monotonic() - start


def save_load():
    worst = [0.0]
    stop = threading.Event()

    def pinger():
        while not stop.is_set():
            worst[0] = max(worst[0], ping_once())
            time.sleep(0.05)

    t = threading.Thread(target=pinger)
    t.start()
    try:
        # As docker-py's users write it: the save's stream is the load's chunked body.
        for _ in api.load_image(api.get_image(image)):
            pass
    finally:
        stop.set()
        t.join()
    assert worst[0] < 1.0, "a /_ping took %.2fs during save -> load" % worst[0]
    assert client.images.get(image).id


def attach_logs():
    c = client.containers.run(image, ["sh", "-c", "echo out-line; echo err-line >&2"],
                              detach=True, name="py-logs-" + unique)
    try:
        assert c.wait(timeout=30)["StatusCode"] == 0
        got = {}

        def attach():
            got["out"] = c.attach(stdout=True, stderr=True, logs=True, stream=False)

        t = threading.Thread(target=attach, daemon=True)
        t.start()
        t.join(15)
        assert not t.is_alive(), "attach(logs=1, stream=0) never ended"
        out = got["out"]
        assert b"out-line\n" in out and b"err-line\n" in out, out
        only_err = c.attach(stdout=False, stderr=True, logs=True, stream=False)
        assert only_err == b"err-line\n", only_err
    finally:
        c.remove(force=True)


def read_until_eof(s, seconds):
    """Reads a socket until EOF; fails if it stays open `seconds`."""
    s.settimeout(seconds)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the attachment stayed open after the detach keys: %r" % data)


def raw(sock_io):
    return sock_io._sock if hasattr(sock_io, "_sock") else sock_io


def detach():
    c = client.containers.run(image, ["sh", "-c", "while true; do sleep 1; done"],
                              detach=True, tty=True, stdin_open=True,
                              name="py-detach-" + unique)
    try:
        for params, keys in [({}, b"\x10\x11"), ({"detachKeys": "ctrl-x"}, b"\x18")]:
            p = {"stdin": 1, "stdout": 1, "stream": 1}
            p.update(params)
            s = raw(api.attach_socket(c.id, params=p))
            time.sleep(0.2)
            s.sendall(b"echo typed\r" + keys)
            read_until_eof(s, 5)
            s.close()
            c.reload()
            assert c.status == "running", c.status
        try:
            api.attach_socket(c.id, params={"stdin": 1, "stream": 1, "detachKeys": "ctrl-xy"})
            raise AssertionError("bad detach keys accepted")
        except docker.errors.APIError as e:
            assert e.status_code == 400 and "Invalid detach keys" in str(e), e
        e = api.exec_create(c.id, ["sh"], stdin=True, tty=True, detach_keys="ctrl-x")
        s = raw(api.exec_start(e["Id"], tty=True, socket=True))
        time.sleep(0.2)
        s.sendall(b"\x18")
        read_until_eof(s, 5)
        s.close()
        assert api.exec_inspect(e["Id"])["Running"] is True
        try:
            api.exec_create(c.id, ["sh"], stdin=True, tty=True, detach_keys="nope")
            raise AssertionError("bad exec detach keys accepted")
        except docker.errors.APIError as err:
            assert err.status_code == 400, err
    finally:
        c.remove(force=True)


def exec_framing():
    c = client.containers.run(image, ["sleep", "60"], detach=True, name="py-frame-" + unique)
    try:
        e = api.exec_create(c.id, ["sh", "-c", "echo hi; echo there >&2"], tty=True)
        out = api.exec_start(e["Id"], tty=False)
        # The pty joins both streams, with its CR LF; docker-py read frames to get it.
        assert out == b"hi\r\nthere\r\n", out
        e = api.exec_create(c.id, ["sh", "-c", "echo plain"], tty=False)
        out = api.exec_start(e["Id"], tty=False, demux=True)
        assert out == (b"plain\n", None), out
    finally:
        c.remove(force=True)


def cli_detach():
    keys = args[0].encode().decode("unicode_escape").encode("latin-1")
    code = int(args[1])
    argv = args[2:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out = b""

    def read_for(seconds):
        nonlocal out
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                out += chunk

    read_for(1.5)
    os.write(fd, keys)
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        read_for(0.2)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("%s did not detach: %r" % (argv, out))
    assert os.waitstatus_to_exitcode(status) == code, (argv, status, out)
    assert (b"read escape sequence" in out) == (code == 1), out


{
    "save-load": save_load,
    "attach-logs": attach_logs,
    "detach": detach,
    "exec-framing": exec_framing,
    "cli-detach": cli_detach,
}[check]()
print("ok " + check)
