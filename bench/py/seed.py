"""Writes a project of many versions straight into one region, in the layout the
Python startifact writes (see the storage format): for each version an object
{project}@{version} with Content-MD5, with --metadata also {key}/metadata holding
{"startifact:filename": NAME} as json.dumps(indent=2, sort_keys=True), and the
/{project}/latest parameter naming the highest version. Staging each version would take
hours; this takes about a minute on moto. Used by bench/metadata.sh.

  seed.py PROJECT COUNT REGION [--metadata]

Versions are 1.0.0 .. 1.0.{COUNT-1}; version 1.0.N holds the bytes "version 1.0.N\\n"
and, with --metadata, the file name "seed-N.txt". Prints the latest version.
"""

import base64
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def md5(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def main():
    project, count, region = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with_metadata = "--metadata" in sys.argv[4:]
    s3 = boto3.client("s3", region_name=region, endpoint_url=os.environ["S3_URL"],
                      config=Config(max_pool_connections=32))
    ssm = boto3.client("ssm", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL_SSM"])
    bucket = f"bench-{region}"

    def put(n):
        key = f"{project}@1.0.{n}"
        body = f"version 1.0.{n}\n".encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=md5(body))
        if with_metadata:
            meta = json.dumps({"startifact:filename": f"seed-{n}.txt"}, indent=2, sort_keys=True).encode()
            s3.put_object(Bucket=bucket, Key=f"{key}/metadata", Body=meta, ContentMD5=md5(meta))

    with ThreadPoolExecutor(max_workers=16) as pool:
        for _ in pool.map(put, range(count)):
            pass
    latest = f"1.0.{count - 1}"
    ssm.put_parameter(Name=f"/{project}/latest", Value=latest, Type="String", Overwrite=True)
    print(latest)


if __name__ == "__main__":
    main()
