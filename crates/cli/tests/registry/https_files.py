#!/usr/bin/python3
"""A static HTTPS file server for the build tests (ADD of https:// URLs).

Serves ROOT's files on 127.0.0.1:PORT with the certificate and key given (signed
by a CA the test makes), with Content-Length and Last-Modified from the files.
Runs until killed.

usage: https_files.py PORT ROOT CERT KEY
"""
import functools
import ssl
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

port, root, cert, key = sys.argv[1:5]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


handler = functools.partial(Quiet, directory=root)
httpd = ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
