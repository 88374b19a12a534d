"""Serve the local Unpod simulator on loopback until interrupted.

A seeded organization of spaces and runs behind the real API's routes, auth and quirks, optionally slow or
faulty; its token is a fake made for the sandbox. Example:

    unpod-runs sandbox --port 8765 --seed 7 --spaces 5 --runs 20000 --fault-rate 0.02
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Callable

from unpod_runs.sandbox.server import FAULT_KINDS, FaultPlan, SandboxServer
from unpod_runs.sandbox.world import World

DEFAULT_PORT = 8765


def _runs(text: str) -> int | list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma list of numbers, got {text!r}") from None
    if any(size < 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"run counts cannot be negative: {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def _fault_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault kinds {unknown}; choose from {','.join(FAULT_KINDS)}")
    return kinds


def _non_negative(convert: type) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = convert(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"cannot be negative: {text}")
        return value
    parse.__name__ = convert.__name__  # argparse names the type in its "invalid ... value" message
    return parse


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, got {text}")
    return port


def _fault_rate(text: str) -> float:
    rate = float(text)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"a fault rate is between 0 and 1, got {text}")
    return rate


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help="port, 0 for any free one (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and the faults (default: %(default)s)")
    parser.add_argument("--spaces", type=_non_negative(int), default=3, help="number of spaces (default: %(default)s)")
    parser.add_argument("--runs", type=_runs, default=100,
                        help="total runs, or a comma list of runs per space (default: %(default)s)")
    parser.add_argument("--skew", action="store_true", help="Zipf-like space sizes instead of even ones")
    parser.add_argument("--org-handle", default="acme", help="organization handle (default: %(default)s)")
    parser.add_argument("--token", help="API token to accept (default: the sandbox's own fake token, printed)")
    parser.add_argument("--latency-ms", type=_non_negative(float), default=0, help="delay added to every API request")
    parser.add_argument("--fault-rate", type=_fault_rate, default=0.0,
                        help="share of API requests that fail (default: %(default)s)")
    parser.add_argument("--fault-kinds", type=_fault_kinds, default=FAULT_KINDS,
                        help=f"comma list of faults to draw from (default: {','.join(FAULT_KINDS)})")
    parser.add_argument("--create-during-paging", type=_non_negative(int), default=0, metavar="N",
                        help="insert N new runs into a space after each of its runs pages >= 2 is served")


def serve(argv: list[str] | None = None) -> int:
    """The command on its own (`python -m unpod_runs.sandbox`), outside the main CLI."""
    parser = argparse.ArgumentParser(prog="python -m unpod_runs.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 then, 2 when the sandbox cannot start."""
    if not is_loopback(args.host):
        print(f"unpod-runs sandbox: refusing to serve on {args.host}: the sandbox binds loopback addresses only",
              file=sys.stderr)
        return 2
    world = World(seed=args.seed, spaces=args.spaces, runs=args.runs, org_handle=args.org_handle,
                  api_token=args.token or None, skew=args.skew)
    server = SandboxServer(world, host=args.host, port=args.port, latency_ms=args.latency_ms,
                           faults=FaultPlan(seed=args.seed, rate=args.fault_rate, kinds=args.fault_kinds),
                           create_during_paging=args.create_during_paging)
    try:
        server.start()
    except OSError as error:
        print(f"unpod-runs sandbox: cannot serve on {args.host}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    # A token the user passed is theirs: never echo it. The generated one is a fake made for the sandbox.
    token = "<your --token>" if args.token else world.api_token
    print(f"Unpod sandbox at {server.base_url} (org {world.org_handle}, {len(world.space_tokens())} spaces); "
          f"point the pipeline at it with SOURCES__UNPOD__BASE_URL={server.base_url} "
          f"SOURCES__UNPOD__ORG_HANDLE={world.org_handle} SOURCES__UNPOD__API_TOKEN={token}", flush=True)
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0
