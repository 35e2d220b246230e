"""Interop probe: resolves the profile in AWS_PROFILE through botocore's default credential
chain and prints only the access key id; `--version` prints botocore's version. On failure
prints botocore's own error to stderr and exits 1. Never prints a secret.
"""
import sys

import botocore
import botocore.session

if sys.argv[1:] == ["--version"]:
    print(botocore.__version__)
    sys.exit(0)
try:
    creds = botocore.session.Session().get_credentials()
    if creds is None:
        raise RuntimeError("no credentials found")
    print(creds.get_frozen_credentials().access_key)
except Exception as e:  # the SDK's own error is the result
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
