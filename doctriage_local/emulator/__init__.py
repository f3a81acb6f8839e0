"""A local Datalab: a real HTTP server on 127.0.0.1 that speaks the structured-extraction API.

It reads values from the uploaded document's own text layer, scores them honestly, follows
Datalab's timeline (processing -> complete -> scored -> expired, scaled by ``time_scale``) and
injects faults on demand. Rooms: ``config`` (knobs and fault kinds), ``document`` (PDF text layer
and marker-style block tree), ``fields`` (finding, coercing and scoring schema properties),
``seeding`` (wrong values at a rate set by their score, on demand), ``multipart`` (form
parsing), ``server`` (HTTP endpoints, jobs, limits, faults).

    from doctriage_local.emulator import DatalabEmulator, EmulatorConfig, FaultRule
    emu = DatalabEmulator(EmulatorConfig(time_scale=0.01)).start()
    ...  # POST f"{emu.url}/api/v1/extract" with header X-API-Key: emu.api_key
    emu.stop()
"""

from .config import FAULT_KINDS, SEEDED_ERROR_RATES, EmulatorConfig, FaultRule
from .server import DatalabEmulator

__all__ = ["FAULT_KINDS", "SEEDED_ERROR_RATES", "DatalabEmulator", "EmulatorConfig", "FaultRule"]
