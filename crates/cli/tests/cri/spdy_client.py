#!/usr/bin/python3
"""A SPDY/3.1 client of Kubernetes' streaming protocols, written for the tests from the SPDY/3
specification and Kubernetes' remotecommand (v4.channel.k8s.io) and portforward.k8s.io
protocols: independent of berth's server code.

    spdy_client.py exec|attach URL [--stdin DATA] [--tty] [--resize WxH]
        -> {"stdout", "stderr", "status"}
    spdy_client.py portforward URL PORT DATA   -> {"data", "error"}
"""
import json
import socket
import struct
import sys
import urllib.parse
import zlib

# The SPDY/3 header dictionary: length-prefixed words, then a raw tail (spec section 2.6.10.1).
WORDS = ("options head post put delete trace accept accept-charset accept-encoding "
         "accept-language accept-ranges age allow authorization cache-control connection "
         "content-base content-encoding content-language content-length content-location "
         "content-md5 content-range content-type date etag expect expires from host if-match "
         "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
         "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
         "server te trailer transfer-encoding upgrade user-agent vary via warning "
         "www-authenticate method get status").split() + ["200 OK"] + \
    "version HTTP/1.1 url public set-cookie keep-alive origin".split()
TAIL = (b"100101201202205206300302303304305306307402405406407408409410411412413414415416417"
        b"502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
        b"400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
        b"501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
        b"Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
        b"image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
        b"publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICT = b"".join(struct.pack(">I", len(w)) + w.encode() for w in WORDS) + TAIL
assert len(DICT) == 1423, len(DICT)

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY = 1, 2, 3, 4, 6, 7
FIN = 1


class Session:
    def __init__(self, url, protocols):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        path = u.path + ("?" + u.query if u.query else "")
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               % (path, u.hostname, u.port))
        for p in protocols:
            req += "X-Stream-Protocol-Version: %s\r\n" % p
        self.sock.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise SystemExit("connection closed during the upgrade: %r" % head)
            head += chunk
        status = head.split(b"\r\n")[0]
        if b" 101 " not in status + b" ":
            rest = self.sock.recv(65536)
            raise SystemExit("upgrade refused: %r %r" % (head, rest))
        self.protocol = ""
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == "x-stream-protocol-version":
                self.protocol = v.strip()
        self.deflate = zlib.compressobj(zdict=DICT)
        self.inflate = zlib.decompressobj(zdict=DICT)
        self.next_id = 1
        self.buf = b""
        self.data = {}
        self.closed = set()
        self.replied = set()
        self.goaway = False

    def open(self, headers):
        sid = self.next_id
        self.next_id += 2
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            block += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        block = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        body = struct.pack(">II", sid, 0) + b"\x00\x00" + block
        self.control(SYN_STREAM, 0, body)
        self.data[sid] = b""
        return sid

    def control(self, kind, flags, body):
        self.sock.sendall(struct.pack(">HHI", 0x8003, kind, (flags << 24) | len(body)) + body)

    def send(self, sid, data, fin=False):
        self.sock.sendall(struct.pack(">II", sid & 0x7fffffff, ((FIN if fin else 0) << 24) | len(data)) + data)

    def read_frame(self):
        while len(self.buf) < 8:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.goaway = True
                return False
            self.buf += chunk
        length = struct.unpack(">I", self.buf[4:8])[0] & 0xffffff
        while len(self.buf) < 8 + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.goaway = True
                return False
            self.buf += chunk
        frame, self.buf = self.buf[:8 + length], self.buf[8 + length:]
        flags = frame[4]
        body = frame[8:]
        if frame[0] & 0x80:
            kind = struct.unpack(">H", frame[2:4])[0]
            if kind == SYN_REPLY:
                sid = struct.unpack(">I", body[:4])[0] & 0x7fffffff
                self.inflate.decompress(body[4:])
                self.replied.add(sid)
                if flags & FIN:
                    self.closed.add(sid)
            elif kind == RST_STREAM:
                self.closed.add(struct.unpack(">I", body[:4])[0] & 0x7fffffff)
            elif kind == GOAWAY:
                self.goaway = True
            elif kind == PING:
                self.control(PING, 0, body)
        else:
            sid = struct.unpack(">I", frame[:4])[0] & 0x7fffffff
            self.data[sid] = self.data.get(sid, b"") + body
            if flags & FIN:
                self.closed.add(sid)
        return True

    def wait(self, cond):
        while not cond() and not self.goaway:
            if not self.read_frame():
                break


def remote_command(url, args):
    stdin = None
    tty = "--tty" in args
    resize = None
    if "--stdin" in args:
        stdin = args[args.index("--stdin") + 1]
    if "--resize" in args:
        w, h = args[args.index("--resize") + 1].split("x")
        resize = {"Width": int(w), "Height": int(h)}
    s = Session(url, ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                      "channel.k8s.io"])
    ids = {"error": s.open({"streamtype": "error"})}
    if stdin is not None:
        ids["stdin"] = s.open({"streamtype": "stdin"})
    ids["stdout"] = s.open({"streamtype": "stdout"})
    if not tty:
        ids["stderr"] = s.open({"streamtype": "stderr"})
    if tty:
        ids["resize"] = s.open({"streamtype": "resize"})
    s.wait(lambda: all(i in s.replied for i in ids.values()))
    if resize is not None:
        s.send(ids["resize"], json.dumps(resize).encode())
    if stdin is not None:
        s.send(ids["stdin"], stdin.encode(), fin=True)
    outs = [ids[k] for k in ("error", "stdout", "stderr") if k in ids]
    s.wait(lambda: all(i in s.closed for i in outs))
    print(json.dumps({
        "protocol": s.protocol,
        "stdout": s.data[ids["stdout"]].decode(errors="replace"),
        "stderr": s.data.get(ids.get("stderr", -1), b"").decode(errors="replace"),
        "status": s.data[ids["error"]].decode(errors="replace"),
    }))


def port_forward(url, port, payload):
    s = Session(url, ["portforward.k8s.io"])
    err = s.open({"streamtype": "error", "port": str(port), "requestid": "0"})
    data = s.open({"streamtype": "data", "port": str(port), "requestid": "0"})
    s.wait(lambda: err in s.replied and data in s.replied)
    s.send(data, payload.encode(), fin=True)
    s.wait(lambda: data in s.closed and err in s.closed)
    print(json.dumps({"data": s.data[data].decode(errors="replace"),
                      "error": s.data[err].decode(errors="replace")}))


def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode in ("exec", "attach"):
        remote_command(url, sys.argv[3:])
    elif mode == "portforward":
        port_forward(url, int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: spdy_client.py exec|attach|portforward URL ...")


main()
