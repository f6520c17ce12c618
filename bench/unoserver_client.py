"""Drives a running unoserver for docconv's benchmark.

Reads one JSON request per line on stdin and answers one JSON line on
stdout, so the harness can interleave unoserver with the other peers while
this client stays warm (no interpreter start-up in the figures).

  {"op": "convert", "path": P}                  -> {"ms": elapsed}
  {"op": "batch", "paths": [..], "concurrency": C} -> {"seconds": wall}
"""
import json
import sys
import threading
import time
import xmlrpc.client

PORT = int(sys.argv[1])


def proxy():
    return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{PORT}", allow_none=True)


def convert(server, path):
    with open(path, "rb") as document:
        data = document.read()
    # unoserver answers one request at a time and keeps a short listen
    # backlog: with many clients some connections are refused or reset, and
    # a real client tries again.
    for attempt in range(50):
        try:
            result = server.convert(None, xmlrpc.client.Binary(data), None, "pdf")
            break
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
            time.sleep(0.02 * (attempt + 1))
    else:
        raise RuntimeError(f"unoserver refused {path} fifty times")
    if not result:
        raise RuntimeError(f"unoserver returned nothing for {path}")
    return result


def batch(paths, concurrency):
    pending = list(paths)
    lock = threading.Lock()
    errors = []

    def work():
        server = proxy()
        while True:
            with lock:
                if not pending:
                    return
                path = pending.pop()
            try:
                convert(server, path)
            except Exception as error:  # reported, not hidden
                errors.append(str(error))

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(errors[0])
    return time.perf_counter() - started


def main():
    server = proxy()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "convert":
                started = time.perf_counter()
                convert(server, request["path"])
                answer = {"ms": (time.perf_counter() - started) * 1000}
            else:
                answer = {"seconds": batch(request["paths"], request["concurrency"])}
        except Exception as error:
            answer = {"error": str(error)}
        print(json.dumps(answer), flush=True)


main()
