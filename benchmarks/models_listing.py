# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,index"
"""``GET /tenants/<t>/models`` on a bucket of many objects (100,000 by default), on the devstack.

Usage (with the devstack's env sourced):

    python benchmarks/models_listing.py [--objects 100000]

Prints the time of the API's listing (every page of 1000 keys, one entry per file in the answer)
against a plain boto3 paginated listing of the same bucket in the same run, as a ratio, and checks
that the answer holds every object. Uses the gunicorn + tenant set-up of models_upload.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import config
from models_upload import Platform, drop_tenant, make_tenant, token

from tests.platform_admin import admin_s3_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    args = parser.parse_args()
    s3 = admin_s3_client(os.environ, max_pool_connections=32)
    admin = config.new_client_from_config(os.environ["KUBECONFIG"])
    platform = Platform(Path(tempfile.mkdtemp(prefix="imm-bench-listing-")))
    tenant = make_tenant(admin, s3)
    try:
        began = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(
                pool.map(
                    lambda n: s3.put_object(Bucket=tenant, Key=f"model{n % 10}/{n % 7 + 1}/f{n}.bin", Body=b"x"),
                    range(args.objects),
                )
            )
        print(f"filled {args.objects} objects in {time.perf_counter() - began:.1f} s")
        platform.start()
        headers = {"Authorization": token("alice")}

        began = time.perf_counter()
        count = sum(
            len(page.get("Contents", [])) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=tenant)
        )
        plain = time.perf_counter() - began

        began = time.perf_counter()
        answer = requests.get(f"{platform.base}/tenants/{tenant}/models", headers=headers, timeout=600)
        answer.raise_for_status()
        listed = len(answer.json()["data"]["models"])
        api = time.perf_counter() - began

        print(f"boto3 paginated listing: {count} objects in {plain:.2f} s")
        print(f"GET /tenants/<t>/models: {listed} entries in {api:.2f} s ({len(answer.content) / 1e6:.1f} MB)")
        print(f"ratio API / boto3 time: {api / plain:.2f}; complete: {listed == args.objects == count}")
    finally:
        platform.stop()
        drop_tenant(admin, s3, tenant)


if __name__ == "__main__":
    main()
