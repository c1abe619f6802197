"""Shared by the Python peers: command line, the open-files limit, the broadcast protocol.

Every peer serves the same workloads (see benchmarks/loadgen/loadgen.c):
  --mode echo       any path: echo every message (a handler doing send(message), nothing else).
  --mode broadcast  /sub: subscribe the connection to the topic "bench";
                    text "count": answer with the number of subscribers (text);
                    text "go <n> <size>": publish n binary messages of <size> bytes to every
                    subscriber, the i-th made of bytes equal to i & 255, with the framework's
                    own fan-out where it has one; binary messages are echoed.
Servers listen on 127.0.0.1 (--host) at --port, compression off unless --compression is given
(verb only), no idle timeouts or pings, frames up to 64 MiB.
"""

import argparse
import resource

MAX_SIZE = 64 * 1024 * 1024
TOPIC = "bench"


def parse_args(description, compression=False):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", choices=("echo", "broadcast"), default="echo")
    if compression:
        parser.add_argument("--compression", choices=("off", "shared", "dedicated"),
                            default="off")
    return parser.parse_args()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_go(text):
    """("go 10 64") -> (10, 64); None for anything else."""
    parts = text.split()
    if len(parts) == 3 and parts[0] == "go":
        return int(parts[1]), int(parts[2])
    return None


def payloads(count, size):
    """The broadcast messages of one "go": the i-th is `size` bytes equal to i & 255."""
    return [bytes((i & 255,)) * size for i in range(count)]
