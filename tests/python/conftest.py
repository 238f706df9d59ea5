"""Shared fixtures: the simulated fleet (`switchyard sim`) and gateways (`switchyard serve`)."""

from gateway_fixtures import *  # noqa: F401,F403
from sim_fixtures import *  # noqa: F401,F403
