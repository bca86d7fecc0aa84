"""The Messenger Platform emulator: a local stand-in for Meta (design.md §6).

`Emulator(EmulatorConfig.demo(...)).start()` serves the Graph API, delivers signed
webhooks, runs the demo bot and serves the customer and control pages. See `server`
for the endpoints, `platform` for the rules, `delivery` for webhook delivery.
"""

from webhooks.emulator.clock import Clock, ManualClock
from webhooks.emulator.config import AppConfig, EmulatorConfig, PageConfig, UserConfig
from webhooks.emulator.emulator import Emulator
from webhooks.emulator.errors import EmulatorError, PlatformRefusal
from webhooks.emulator.platform import Platform, Result, Webhook

__all__ = [
    "AppConfig",
    "Clock",
    "Emulator",
    "EmulatorConfig",
    "EmulatorError",
    "ManualClock",
    "PageConfig",
    "Platform",
    "PlatformRefusal",
    "Result",
    "UserConfig",
    "Webhook",
]
