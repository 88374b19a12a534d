"""The local Unpod API simulator: a seeded world of spaces and runs (`World`) served over HTTP (`SandboxServer`),
with the real API's quirks and injectable faults (`FaultPlan`). The demo and every test run against it."""

from unpod_runs.sandbox.server import FaultPlan, SandboxServer
from unpod_runs.sandbox.world import World

__all__ = ["FaultPlan", "SandboxServer", "World"]
