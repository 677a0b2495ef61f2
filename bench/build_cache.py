"""Nothing moves twice: a 2 GiB synthetic model through the real build steps (check, weights, image,
parameters) against moto's S3/ECR/SSM and the local Hugging Face-compatible hub, deployed twice.

    .venv/bin/python bench/build_cache.py [--gib 2] [--shards 4]

Prints, for the first deploy and the redeploy: bytes downloaded from the hub (counted by the hub server),
bytes uploaded to S3 and S3 calls (counted on the boto3 client), image builds (the image step's decision:
its content-hash tag is in ECR or not); and the first deploy's throughput as a fraction of the loopback copy
speed measured in the same run: the plainest copy of the same bytes from the same hub into the same moto S3
(sequential GET -> 16 MiB parts, no hashing or resume); reading the hub alone is printed too.

There is no Docker daemon here: the image step's command runner is replaced by one that records the
`docker buildx build` command and registers the pushed tag in moto's ECR, as a push would. The weights are
sparse files of zeros (no disk, no memory to generate); every byte still crosses HTTP, sha256 and S3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL_ID, HF_ID = "Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"
BUCKET, REPOSITORY = "emd-bench-artifacts", "emd-engines"
TEMPLATE = {"Parameters": {"EngineImageUri": {"Type": "String"}, "ModelDataS3Uri": {"Type": "String"}}}


class S3Meter:
    """Counts S3 calls and the request body bytes of uploads on one boto3 client."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self.uploaded = 0
        client.meta.events.register("before-parameter-build.s3.*", self._count)

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        body = params.get("Body")
        if isinstance(body, bytes | bytearray):
            self.uploaded += len(body)

    def reset(self) -> None:
        self.calls = self.uploaded = 0


class PushRecorder:
    """The image step's runner here: records builds; a --push registers the tag in moto's ECR."""

    def __init__(self, ecr: Any) -> None:
        self.ecr = ecr
        self.builds = 0

    def __call__(self, argv: list[str], stdin: str | None, cwd: Path | None) -> None:
        if argv[:3] != ["docker", "buildx", "build"]:
            return  # docker login
        self.builds += 1
        tag = argv[argv.index("--tag") + 1].rsplit(":", 1)[1]
        digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": digest, "size": 1, "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": [],
        }
        self.ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag)


def start_moto() -> tuple[subprocess.Popen, str]:
    import httpx

    from tests.support.servers import free_port

    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def loopback_read(hub: Any, files: list[str]) -> tuple[int, float]:
    """The same bytes read from the same hub over loopback into nothing: the speed limit of the source."""
    import httpx

    moved, started = 0, time.monotonic()
    with httpx.Client(timeout=60) as client:
        for name in files:
            with client.stream("GET", f"{hub.url}/{HF_ID}/resolve/main/{name}", follow_redirects=True) as r:
                for chunk in r.iter_bytes(1024 * 1024):
                    moved += len(chunk)
    return moved, time.monotonic() - started


def loopback_copy(hub: Any, s3: Any, files: list[str]) -> tuple[int, float]:
    """The plainest copy of the same bytes from the same hub into the same S3 over loopback: one file at a
    time, GET cut into 16 MiB parts, each uploaded as it fills; no hashing, no resume, no parallelism."""
    import httpx

    part = 16 * 1024 * 1024
    moved, started = 0, time.monotonic()
    with httpx.Client(timeout=60) as client:
        for name in files:
            key = f"plain-copy/{name}"
            upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
            parts, buffer = [], bytearray()

            def send(data: bytes, key: str = key, upload: str = upload, parts: list = parts) -> None:
                number = len(parts) + 1
                etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=data)
                parts.append({"PartNumber": number, "ETag": etag["ETag"]})

            with client.stream("GET", f"{hub.url}/{HF_ID}/resolve/main/{name}", follow_redirects=True) as r:
                for chunk in r.iter_bytes(1024 * 1024):
                    moved += len(chunk)
                    buffer.extend(chunk)
                    if len(buffer) >= part:
                        send(bytes(buffer[:part]))
                        del buffer[:part]
            if buffer or not parts:
                send(bytes(buffer))
            done = {"Parts": parts}
            s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload=done)
    seconds = time.monotonic() - started
    for name in files:
        s3.delete_object(Bucket=BUCKET, Key=f"plain-copy/{name}")
    return moved, seconds


def one_deploy(bundle: Path, hub: Any, s3: Any, meter: S3Meter, runner: PushRecorder) -> dict[str, Any]:
    """A fresh CodeBuild source directory with the same bundle, and the four steps of the buildspec."""
    from serving.build import prepare
    from serving.build.weights import prepare_weights

    src = Path(tempfile.mkdtemp(prefix="emd-bench-src-", dir=bundle.parent))
    for name in ("deployment.json", "template.json"):
        (src / name).write_bytes((bundle / name).read_bytes())
    (src / "serving").symlink_to(ROOT / "serving")
    os.environ["CODEBUILD_SRC_DIR"] = str(src)
    hub.stats.reset()
    meter.reset()
    runner.builds = 0
    started = time.monotonic()
    prepare.step_check()
    dep = prepare.load_deployment()
    result = prepare_weights(dep, bucket=BUCKET, s3=s3, token=lambda: None, log=lambda m: None)
    prepare.write_state(model_data_s3_uri=result.uri)
    weights_seconds = time.monotonic() - started
    prepare.step_image(runner)
    prepare.step_parameters()
    params = json.loads((src / "parameters.json").read_text())["Parameters"]
    assert params["ModelDataS3Uri"] == result.uri
    return {
        "downloaded": hub.stats.bytes_sent,
        "uploaded": meter.uploaded,
        "s3_calls": meter.calls,
        "image_builds": runner.builds,
        "weights_seconds": weights_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()

    import boto3

    from tests.support.hf_server import HubServer

    work = Path(tempfile.mkdtemp(prefix="emd-bench-build-"))
    moto, moto_url = start_moto()
    os.environ.update({
        "AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "EMD_WEIGHTS_HUB": "huggingface",
        "EMD_PROGRESS_SECONDS": "3600",
    })  # fmt: skip
    hub = HubServer(work / "hub").start()
    try:
        total = int(args.gib * 2**30)
        names = [f"model-{i + 1:05d}-of-{args.shards:05d}.safetensors" for i in range(args.shards)]
        for name in names:
            hub.add_sparse_file(HF_ID, name, total // args.shards)
        hub.add_repo(HF_ID, {"config.json": '{"architectures": ["Qwen2ForCausalLM"]}'})
        hub.files(HF_ID)  # the hub hashes its files once, before anything is timed
        from huggingface_hub import constants

        os.environ.update(hub.env())
        constants.ENDPOINT = hub.url
        constants.HUGGINGFACE_CO_URL_TEMPLATE = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        constants.HF_HUB_OFFLINE = False

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        ecr = boto3.client("ecr")
        created = ecr.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
        repo_uri = created["repository"]["repositoryUri"]
        os.environ["EMD_ECR_REPOSITORY_URI"] = repo_uri
        bundle = work / "bundle"
        bundle.mkdir()
        (bundle / "deployment.json").write_text(json.dumps({
            "model_id": MODEL_ID, "model_tag": "bench", "engine_type": "vllm",
            "stack_name": "EMD-Model-bench", "extra_params": {},
        }))  # fmt: skip
        (bundle / "template.json").write_text(json.dumps(TEMPLATE))
        meter = S3Meter(s3)
        runner = PushRecorder(ecr)

        size = sum(f.size for f in hub.files(HF_ID))
        paths = [f.path for f in hub.files(HF_ID)]
        read, read_seconds = loopback_read(hub, paths)
        copied, copy_seconds = loopback_copy(hub, s3, paths)
        first = one_deploy(bundle, hub, s3, meter, runner)
        again = one_deploy(bundle, hub, s3, meter, runner)
    finally:
        hub.stop()
        moto.terminate()
        moto.wait(10)

    read_rate, loop_rate = read / read_seconds, copied / copy_seconds
    build_rate = first["downloaded"] / first["weights_seconds"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"build_cache: {size / 2**30:.2f} GiB model ({args.shards} safetensors shards + config), "
          "real steps against moto + the local hub")  # fmt: skip
    print(f"{'':22}{'first deploy':>16}{'redeploy':>12}   target on redeploy")
    for label, key, target in (
        ("bytes downloaded", "downloaded", "0"),
        ("bytes uploaded", "uploaded", "0"),
        ("S3 calls", "s3_calls", "<= 3"),
        ("image builds", "image_builds", "0"),
    ):
        print(f"{label:22}{first[key]:>16,}{again[key]:>12,}   {target}")
    print(
        f"first deploy weights: {first['weights_seconds']:.1f} s, {build_rate / 1e6:.0f} MB/s = "
        f"{build_rate / loop_rate:.2f} x the loopback copy hub -> S3 ({loop_rate / 1e6:.0f} MB/s, plain "
        f"sequential copy of the same bytes) = {build_rate / read_rate:.2f} x reading the hub alone "
        f"({read_rate / 1e6:.0f} MB/s)"
    )
    print(f"peak RSS of this process (hub server + build steps): {peak:.0f} MiB")
    moved_again = (again["downloaded"], again["uploaded"], again["image_builds"])
    ok = moved_again == (0, 0, 0) and again["s3_calls"] <= 3
    ok = ok and first["downloaded"] == size and first["uploaded"] >= size
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
