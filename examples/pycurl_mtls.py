#!/usr/bin/env python3
"""Mutual TLS from Python with a Stint task key, through pycurl; the key
never leaves the token.

  STINT_KEY_URI='pkcs11:token=billing;object=t-...;type=private' \\
  STINT_CERT_URI='pkcs11:token=billing;object=t-...;type=cert' \\
  python3 pycurl_mtls.py https://service.example/ [SERVER-CA.pem]

Debian's python3-pycurl uses libcurl-gnutls: GnuTLS opens pkcs11: URIs
itself, from the modules registered with p11-kit (stint.module, installed
by `make install`). With a libcurl built on OpenSSL the URIs go through
the libp11 engine; set PKCS11_MODULE_PATH to stint-pkcs11.so for it.

Prints the HTTP status and the body; exits 1 with curl's error when the
handshake fails (as it does once the task has ended).
"""
import io
import os
import sys

import pycurl


def fetch(url, cafile=None):
    body = io.BytesIO()
    c = pycurl.Curl()
    try:
        c.setopt(pycurl.URL, url)
        if "OpenSSL" in pycurl.version:
            # curl's command line detects pkcs11: URIs; libcurl is told.
            c.setopt(pycurl.SSLENGINE, "pkcs11")
            c.setopt(pycurl.SSLCERTTYPE, "ENG")
            c.setopt(pycurl.SSLKEYTYPE, "ENG")
        c.setopt(pycurl.SSLCERT, os.environ["STINT_CERT_URI"])
        c.setopt(pycurl.SSLKEY, os.environ["STINT_KEY_URI"])
        if cafile:
            c.setopt(pycurl.CAINFO, cafile)
        c.setopt(pycurl.WRITEDATA, body)
        c.perform()
        return c.getinfo(pycurl.RESPONSE_CODE), body.getvalue()
    finally:
        c.close()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    try:
        status, page = fetch(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
    except pycurl.error as e:
        print("pycurl: error %s: %s" % (e.args[0], e.args[1] if len(e.args) > 1 else ""), file=sys.stderr)
        sys.exit(1)
    print(status)
    sys.stdout.write(page.decode("utf-8", "replace"))
