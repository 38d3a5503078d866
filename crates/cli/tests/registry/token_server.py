#!/usr/bin/python3
"""A token service for the registry tests: distribution's `auth: token` flow.

It checks HTTP basic credentials against one user, grants every action the
request's scopes ask for (none for anonymous requests), and signs an RS256 JWT
whose `kid` is the libtrust key id of the signing certificate that the registry
trusts (its `rootcertbundle`). Answers GET (docker's basic flow) and POST
(OAuth2 password and refresh-token grants). Runs until killed.

usage: token_server.py PORT KEY CERT ISSUER USER PASSWORD
"""
import base64
import hashlib
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

port, key_path, cert_path, issuer, user, password = sys.argv[1:7]
key = open(key_path, "rb").read()
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
spki = cert.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
b32 = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode().rstrip("=")
kid = ":".join(b32[i:i + 4] for i in range(0, 48, 4))
REFRESH = "refresh-" + uuid.uuid4().hex


def access_for(scopes):
    out = []
    for s in scopes:
        parts = s.split(":")
        if len(parts) < 3:
            continue
        typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
        out.append({"type": typ, "name": name, "actions": [a for a in actions.split(",") if a]})
    return out


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def issue(self, account, q):
        service = q.get("service", [""])[0]
        scopes = q.get("scope", [])
        now = int(time.time())
        claims = {
            "iss": issuer, "sub": account or "", "aud": service,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
            "access": access_for(scopes) if account else [],
        }
        tok = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        body = {"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        if account:
            body["refresh_token"] = REFRESH
        self.reply(200, body)

    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        h = self.headers.get("Authorization", "")
        account = None
        if h.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(h[6:]).decode().partition(":")
            except Exception:
                return self.reply(400, {"details": "bad basic auth"})
            if (u, p) != (user, password):
                return self.reply(401, {"details": "invalid username or password"})
            account = u
        self.issue(account, q)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        form = parse_qs(self.rfile.read(n).decode())
        grant = form.get("grant_type", [""])[0]
        if grant == "refresh_token" and form.get("refresh_token", [""])[0] == REFRESH:
            return self.issue(user, form)
        if grant == "password" and (form.get("username", [""])[0], form.get("password", [""])[0]) == (user, password):
            return self.issue(user, form)
        self.reply(401, {"details": "invalid grant"})


ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
