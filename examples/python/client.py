"""A docconv client in Python: submit a document in chunks, follow the job
live with WatchJob, download the result with ReadResult (resuming from an
offset), and read a refusal's google.rpc.BadRequest field by field.

The gRPC code is generated from the repository's proto/ (it is not checked
in):

    python -m venv venv && venv/bin/pip install -r examples/python/requirements.txt
    venv/bin/python -m grpc_tools.protoc -I proto \\
        --python_out=examples/python/generated --grpc_python_out=examples/python/generated \\
        docconv/v1/converter.proto
    PYTHONPATH=examples/python/generated venv/bin/python examples/python/client.py \\
        --server 127.0.0.1:50051 report.docx report.pdf

Exit codes: 0 when the job succeeded and its result is saved, 1 when the
job failed or was cancelled, 2 when a call was refused or failed.
"""

import argparse
import hashlib
import os
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from docconv.v1 import converter_pb2 as pb
from docconv.v1 import converter_pb2_grpc as pb_grpc

# The API takes data chunks of at most 1 MiB.
CHUNK = 1024 * 1024
# Each ReadResult call reads a window of this size: a download that stops
# loses at most the window in flight, and the next call starts where the
# file on disk ends.
WINDOW = 64 * 1024


def submit_requests(path, header):
    """The Submit stream: the header, then the file chunk by chunk."""
    yield pb.SubmitRequest(header=header)
    with open(path, "rb") as document:
        while chunk := document.read(CHUNK):
            yield pb.SubmitRequest(data=chunk)


def describe(job):
    state = pb.JobState.Name(job.state).removeprefix("JOB_STATE_")
    if job.state == pb.JOB_STATE_QUEUED:
        return f"{state} position {job.queue_position}"
    if job.state == pb.JOB_STATE_RUNNING and job.HasField("progress"):
        stage = pb.Stage.Name(job.progress.stage).removeprefix("STAGE_")
        return f"{state} {stage} {job.progress.percent}%"
    if job.HasField("error"):
        return f"{state}: {job.error.message}"
    return state


def watch(stub, job_id, metadata):
    """Prints every state until the job ends; returns the last."""
    last = None
    for event in stub.WatchJob(pb.WatchJobRequest(id=job_id), metadata=metadata):
        if event.HasField("job"):  # the other events are heartbeats
            print(describe(event.job), flush=True)
            last = event.job
    return last


def download(stub, job, out, metadata):
    """Writes the result to `out` through `out.<id>.part`, resuming from
    that file's end if an earlier download stopped."""
    size = job.output.size_bytes
    partial = f"{out}.{job.id}.part"
    offset = os.path.getsize(partial) if os.path.exists(partial) else 0
    if offset:
        print(f"resuming at offset {offset}", flush=True)
    with open(partial, "ab") as file:
        while offset < size:
            request = pb.ReadResultRequest(id=job.id, offset=offset, limit=WINDOW)
            for chunk in stub.ReadResult(request, metadata=metadata):
                assert chunk.offset == offset, "chunks arrive in order"
                file.write(chunk.data)
                offset += len(chunk.data)
            file.flush()
        os.fsync(file.fileno())
    with open(partial, "rb") as file:
        digest = hashlib.sha256(file.read()).hexdigest()
    if digest != job.output.sha256:
        os.remove(partial)
        raise SystemExit("the download does not match the job's SHA-256; run again")
    os.replace(partial, out)
    print(f"saved {out} ({size} bytes, {job.output.page_count} pages)", flush=True)


def print_refusal(error):
    """A call's error; for INVALID_ARGUMENT, each field the service named."""
    print(f"refused: {error.code().name}: {error.details()}", file=sys.stderr)
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--page-ranges", default="", help="a PDF option, e.g. 2-3")
    parser.add_argument("--job", help="download this job's result instead of submitting")
    parser.add_argument("document", nargs="?")
    parser.add_argument("out")
    args = parser.parse_args()

    # A service with tokens wants one on every call.
    token = os.environ.get("DOCCONV_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(args.server) as channel:
        stub = pb_grpc.ConverterStub(channel)
        try:
            if args.job:
                job = stub.GetJob(pb.GetJobRequest(id=args.job), metadata=metadata)
            else:
                options = pb.ConversionOptions()
                if args.page_ranges:
                    options.pdf.page_ranges = args.page_ranges
                header = pb.SubmitHeader(
                    file_name=os.path.basename(args.document),
                    size_bytes=os.path.getsize(args.document),
                    options=options,
                )
                job = stub.Submit(submit_requests(args.document, header), metadata=metadata)
                print(f"submitted {job.id}", flush=True)
                job = watch(stub, job.id, metadata)
            if job.state != pb.JOB_STATE_SUCCEEDED:
                return 1
            download(stub, job, args.out, metadata)
            return 0
        except grpc.RpcError as error:
            print_refusal(error)
            return 2


if __name__ == "__main__":
    sys.exit(main())
