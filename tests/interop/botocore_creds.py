"""Resolve credentials for a profile with the real botocore and print what it got.

Used by the integration tests (tests/integration/interop.rs): botocore's own SSO provider
reads the token sso-agent exported to ~/.aws/sso/cache, or runs credential_process.
"""
import json
import sys

import botocore.session

session = botocore.session.Session(profile=sys.argv[1])
creds = session.get_credentials()
if creds is None:
    print(json.dumps({"error": "no credentials"}))
    sys.exit(1)
frozen = creds.get_frozen_credentials()
print(json.dumps({"method": creds.method, "accessKeyId": frozen.access_key, "hasSecret": bool(frozen.secret_key), "hasToken": bool(frozen.token)}))
