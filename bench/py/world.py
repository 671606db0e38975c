"""The benchmark's regions on the loopback servers (S3 at S3_URL, SSM at
AWS_ENDPOINT_URL_SSM), for bench/servers.sh.

  world.py setup REGIONS        bucket bench-REGION in each region, /bench/bucket-name
                                naming it, and the /startifact configuration parameter
  world.py delete REGIONS KEY.. deletes the objects KEY and KEY/metadata in every region
  world.py check REGIONS SIZE KEY..
                                fails unless every region holds every KEY at SIZE bytes
  world.py list REGION PREFIX   lists the keys under PREFIX (ListObjectsV2, every page)
                                and prints "COUNT MILLISECONDS"
"""

import json
import os
import sys
from time import perf_counter_ns

import boto3


def clients(region):
    s3 = boto3.client("s3", region_name=region, endpoint_url=os.environ["S3_URL"])
    ssm = boto3.client("ssm", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL_SSM"])
    return s3, ssm


def setup(regions):
    configuration = json.dumps({
        "bucket_name_param": "/bench/bucket-name",
        "bucket_key_prefix": "",
        "parameter_name_prefix": "",
        "regions": ",".join(regions),
        "save_ok": "y",
    })
    for region in regions:
        s3, ssm = clients(region)
        bucket = f"bench-{region}"
        try:
            if region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        ssm.put_parameter(Name="/bench/bucket-name", Value=bucket, Type="String", Overwrite=True)
        ssm.put_parameter(Name="/startifact", Value=configuration, Type="String", Overwrite=True)


def delete(regions, keys):
    for region in regions:
        s3, _ = clients(region)
        for key in keys:
            for k in (key, f"{key}/metadata"):
                try:
                    s3.delete_object(Bucket=f"bench-{region}", Key=k)
                except s3.exceptions.ClientError as e:
                    print(f"{region}: delete {k}: {e}", file=sys.stderr)


def check(regions, size, keys):
    wrong = []
    for region in regions:
        s3, _ = clients(region)
        for key in keys:
            try:
                got = s3.head_object(Bucket=f"bench-{region}", Key=key)["ContentLength"]
            except s3.exceptions.ClientError as e:
                got = e
            if got != size:
                wrong.append(f"{region} {key}: {got}")
    if wrong:
        sys.exit("not staged at full size: " + "; ".join(wrong))


def list_keys(region, prefix):
    s3, _ = clients(region)
    t0 = perf_counter_ns()
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=f"bench-{region}", Prefix=prefix):
        count += len(page.get("Contents", []))
    print(count, f"{(perf_counter_ns() - t0) / 1e6:.1f}")


if __name__ == "__main__":
    command, regions = sys.argv[1], sys.argv[2].split(",")
    if command == "setup":
        setup(regions)
    elif command == "delete":
        delete(regions, sys.argv[3:])
    elif command == "list":
        list_keys(regions[0], sys.argv[3])
    elif command == "check":
        check(regions, int(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit(f"unknown command {command}")
