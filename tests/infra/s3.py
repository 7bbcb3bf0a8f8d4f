"""An S3-compatible server for the test suite: moto, in a thread of the test process.

`moto_s3()` starts the server on a free 127.0.0.1 port, creates a bucket and points
the process at it:

- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (``testing``) and
  ``AWS_DEFAULT_REGION`` (``us-east-1``), for boto3 and s3fs;
- ``FSSPEC_S3_ENDPOINT_URL``, which fsspec reads into its config when it is
  imported, so ``fsspec.filesystem("s3")`` in any child process reaches moto; the
  already-imported fsspec of this process gets the same value in ``fsspec.config.conf``.

Everything is put back as it was when the context ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

import fsspec.config

__all__ = ["BUCKET", "moto_s3", "patched_environ"]

BUCKET = "modelyard-test"
REGION = "us-east-1"


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _fsspec_s3_endpoint(endpoint_url: str) -> Iterator[None]:
    conf = fsspec.config.conf.setdefault("s3", {})
    saved = dict(conf)
    conf["endpoint_url"] = endpoint_url
    try:
        yield
    finally:
        conf.clear()
        conf.update(saved)


def _forget_s3fs_instances() -> None:
    """Drop cached S3FileSystem objects, which remember their endpoint and keys."""
    try:
        import s3fs
    except ImportError:  # pragma: no cover - s3fs comes with the dev extra
        return
    s3fs.S3FileSystem.clear_instance_cache()


@contextlib.contextmanager
def moto_s3(bucket: str = BUCKET) -> Iterator[dict[str, str]]:
    """Run moto's S3 on 127.0.0.1; yield ``{"endpoint_url", "bucket", "region"}``."""
    # Imported here: moto takes ~1 s to import, and most test processes never need it.
    import boto3
    from moto.server import ThreadedMotoServer

    # Port 0: the OS picks a free port at bind time, so no other process can take it
    # between choosing and binding (moto would then wait forever for its thread).
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "FSSPEC_S3_ENDPOINT_URL": endpoint_url,
        }
        with patched_environ(env), _fsspec_s3_endpoint(endpoint_url):
            _forget_s3fs_instances()
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION)
            client.create_bucket(Bucket=bucket)
            try:
                yield {"endpoint_url": endpoint_url, "bucket": bucket, "region": REGION}
            finally:
                _forget_s3fs_instances()
    finally:
        server.stop()
