#!/usr/bin/python3
"""Drives a CRI streaming URL with the Kubernetes Python client's WebSocket code
(kubernetes.stream.ws_client, Debian's python3-kubernetes): the channel protocol
v4.channel.k8s.io for exec and attach, the port-forward protocol for port forwarding.

    ws_client.py exec|attach URL [STDIN]      -> {"stdout", "stderr", "code"}
    ws_client.py portforward URL PORT DATA     -> {"data", "error"}
"""
import json
import select
import sys
import time

from kubernetes.client import Configuration
from kubernetes.stream import ws_client


def main():
    mode, url = sys.argv[1], sys.argv[2]
    cfg = Configuration()
    if mode in ("exec", "attach"):
        c = ws_client.WSClient(cfg, ws_client.get_websocket_url(url), None, True)
        if len(sys.argv) > 3:
            c.write_stdin(sys.argv[3])
        c.run_forever(timeout=30)
        print(json.dumps({"stdout": c.read_stdout(), "stderr": c.read_stderr(),
                          "code": c.returncode}))
    elif mode == "portforward":
        port = int(sys.argv[3])
        ws = ws_client.create_websocket(
            cfg, ws_client.get_websocket_url(url, [("ports", str(port))]))
        pf = ws_client.PortForward(ws, [port])
        s = pf.socket(port)
        s.setblocking(True)
        try:
            s.sendall(sys.argv[4].encode())
        except BrokenPipeError:
            # The pod answered and hung up first (WebSocket port forwarding has no half
            # close): its answer is still there to read.
            pass
        data = b""
        deadline = time.time() + 20
        while time.time() < deadline:
            r, _, _ = select.select([s], [], [], 0.5)
            if r:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    # The proxy closed its end with our bytes unread: the pod answered
                    # without reading them, and the connection is over.
                    break
                if not chunk:
                    break
                data += chunk
        s.close()
        print(json.dumps({"data": data.decode(errors="replace"), "error": pf.error(port)}))
    else:
        sys.exit("usage: ws_client.py exec|attach|portforward URL ...")


main()
