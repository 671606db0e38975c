"""A moto server that can be seeded fast: objects written straight into its in-process
S3 backend (tens of thousands in seconds), not one HTTP request each.

Usage: seeded_moto.py PORT. Once it prints "up", each line on stdin
`seed BUCKET PROJECT COUNT` writes COUNT versions of PROJECT into BUCKET in the
Startifact layout (`PROJECT@VERSION`, and its `PROJECT@VERSION/metadata` object naming
the file `app-VERSION.tar.gz`), version n being 1.(n // 100).(n % 100), and answers
"seeded". The bucket must exist (made over HTTP, as every test world makes its own).
"""

import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer


def version(n):
    return f"1.{n // 100}.{n % 100}"


def seed(bucket, project, count):
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for n in range(count):
        key = f"{project}@{version(n)}"
        metadata = '{\n  "startifact:filename": "app-%s.tar.gz"\n}' % version(n)
        backend.put_object(bucket, key, key.encode(), disable_notification=True)
        backend.put_object(
            bucket, key + "/metadata", metadata.encode(), disable_notification=True
        )


def main():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]))
    server.start()
    print("up", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["seed"]:
            seed(words[1], words[2], int(words[3]))
            print("seeded", flush=True)
    server.stop()


if __name__ == "__main__":
    main()
