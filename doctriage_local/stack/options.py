"""How a local stack is started: StackOptions (the time scale, Datalab, ports, overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StackOptions:
    time_scale: float = 1.0
    datalab_api_url: str | None = None  # None: start the built-in emulator
    datalab_api_key: str | None = None
    # Datalab's webhook secret: with it, webhook-assisted waiting is on. None: the emulator's own
    # (EmulatorConfig.webhook_secret; "" there turns webhooks off), or off with an outside API.
    webhook_secret: str | None = None
    emulator: Any = None  # an EmulatorConfig; its time_scale is set from ours
    human_review_threshold: float | None = None
    region: str = "us-east-1"
    server_port: int | None = None  # serve the stack on 127.0.0.1:port for other processes (0: any)
    emulator_port: int = 0  # the built-in emulator's port on 127.0.0.1 (0: any free port)
    log_level: str = "WARNING"  # the handlers' powertools log level
    environment: dict[str, str] = field(default_factory=dict)  # extra handler environment
    parameters: dict[str, Any] = field(default_factory=dict)  # template parameter overrides
