from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emulator.support import PSID, Receiver, config
from webhooks.emulator import Emulator, EmulatorConfig


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def make_emulator(receiver: Receiver) -> Iterator[Callable[..., Emulator]]:
    """Start an emulator whose helpdesk app posts to `receiver`; fast retries."""
    started: list[Emulator] = []

    def make(mode: str = "cr", **changes: Any) -> Emulator:
        cfg: EmulatorConfig = config(mode, **changes.pop("config_kwargs", {}))
        cfg.app("100000000000001").callback_url = receiver.url  # type: ignore[union-attr]
        cfg.retry_delays_seconds = (0.05, 0.1)
        cfg.delivery_timeout_seconds = 1.0
        cfg.out_of_order_hold_seconds = 0.5
        for key, value in changes.items():
            setattr(cfg, key, value)
        emulator = Emulator(cfg)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator()


@pytest.fixture
def psid() -> str:
    return PSID
