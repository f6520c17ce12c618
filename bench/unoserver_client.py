"""Drives a running unoserver for docconv's benchmark.

Reads one JSON request per line on stdin and answers one JSON line on
stdout, so the harness can interleave unoserver with the other peers while
this client stays warm (no interpreter start-up in the figures).

  {"op": "convert", "path": P, "instance": I}    -> {"ms": elapsed}
  {"op": "batch", "paths": [..], "concurrency": C}
      -> {"seconds": wall, "latencies_ms": [each document's]}

Its arguments are the ports of one or more unoservers: a batch's client
thread N talks to the unoserver N modulo their number, and a single
conversion to the one it names (the first by default).
"""
import json
import sys
import threading
import time
import xmlrpc.client

PORTS = [int(port) for port in sys.argv[1:]]


def proxy(instance=0):
    port = PORTS[instance % len(PORTS)]
    return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}", allow_none=True)


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
    latencies = []

    def work(instance):
        server = proxy(instance)
        while True:
            with lock:
                if not pending:
                    return
                path = pending.pop()
            try:
                began = time.perf_counter()
                convert(server, path)
                latencies.append((time.perf_counter() - began) * 1000)
            except Exception as error:  # reported, not hidden
                errors.append(str(error))

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(errors[0])
    return {"seconds": wall, "latencies_ms": latencies}


def main():
    servers = [proxy(instance) for instance in range(len(PORTS))]
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "convert":
                started = time.perf_counter()
                convert(servers[request.get("instance", 0) % len(servers)], request["path"])
                answer = {"ms": (time.perf_counter() - started) * 1000}
            else:
                answer = batch(request["paths"], request["concurrency"])
        except Exception as error:
            answer = {"error": str(error)}
        print(json.dumps(answer), flush=True)


main()
