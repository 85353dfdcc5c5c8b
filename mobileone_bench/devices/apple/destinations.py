"""Which iPhones to run on: the devices ``xcrun devicectl list devices --json-output FILE`` describes, and the
choice of one, several or all of them from ``--destination``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mobileone_bench.devices.apple import commands
from mobileone_bench.devices.apple.report import os_version3
from mobileone_bench.errors import DeviceUnavailableError, UsageError

__all__ = ["ALL_DEVICES", "NOT_READY_HINT", "Device", "parse_devicectl", "select_device", "select_devices",
           "destination_names", "list_devices", "choose", "reported_device", "looks_like_udid"]

#: ``--destination all``: every iOS device ready for a test run (live tunnel, developer services, a UDID).
ALL_DEVICES = "all"
#: What to do about a phone that is not ready.
NOT_READY_HINT = ("connect and unlock it, trust this Mac, and turn on Developer Mode (Settings > Privacy & "
                  "Security)")
#: A hardware UDID: ``00008101-001A2D3C0E91002E`` (iPhone XS and later) or 40 hex digits (earlier iPhones).
_UDID = re.compile(r"^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})$")
#: The first iOS whose devices CoreDevice reaches through a tunnel (iOS 16 and earlier: MobileDevice, no tunnel).
_TUNNEL_IOS = 17


def looks_like_udid(text: str) -> bool:
    """Whether ``text`` has the shape of a hardware UDID (what ``xcodebuild -destination id=`` takes)."""
    return bool(_UDID.match(text.strip()))


@dataclass(frozen=True)
class Device:
    """A device as ``devicectl`` describes it.

    Attributes:
        udid: The UDID ``xcodebuild -destination id=...`` takes (``hardwareProperties.udid``); ``None`` when
            ``devicectl`` gives none (as for some iOS 16 devices): such a phone is not ready until it is named by
            its UDID (destinations are always UDIDs, never names).
        identifier: The CoreDevice identifier (what ``devicectl --device`` takes).
        name: The name the user gave the device.
        product_type: Model identifier (``iPhone13,2``), what the harness reports; ``None`` when unknown.
        marketing_name: ``iPhone 12``; ``None`` when unknown.
        platform: ``iOS``, ``watchOS``...; ``None`` when unknown.
        os_version: ``17.5.1``; ``None`` when unknown.
        connected: Live now: on iOS 17 and later a CoreDevice tunnel that is up (``tunnelState: connected``); on
            iOS 16 and earlier (no tunnel) a link (``transportType``). A phone that is merely remembered, asleep or
            locked is not connected.
        paired: ``connectionProperties.pairingState`` is ``paired`` (``True`` when ``devicectl`` does not say).
        available: Ready for development: its developer disk image services are not reported unavailable and
            Developer Mode is not reported disabled (``True`` when ``devicectl`` does not say).
        reachable: ``devicectl`` sees a link to it (``transportType``: ``wired``, ``localNetwork``), tunnel up or
            not: a reachable phone that is not connected, or without developer services, is idle or locked.
        detail: ``devicectl``'s own words about its state (``tunnelState disconnected, ddiServicesAvailable false,
            transportType localNetwork``), for messages.
        developer_mode_off: ``developerModeStatus`` is ``disabled``.
    """

    udid: str | None
    identifier: str
    name: str
    product_type: str | None
    marketing_name: str | None
    platform: str | None
    os_version: str | None
    connected: bool
    paired: bool = True
    available: bool = True
    reachable: bool | None = None
    detail: str = ""
    developer_mode_off: bool = False

    def label(self) -> str:
        """``Jane's iPhone (iPhone 12, iOS 17.5.1, 00008101-...)``."""
        facts = [f for f in (self.marketing_name or self.product_type,
                             f"{self.platform or 'iOS'} {self.os_version}" if self.os_version else None,
                             self.udid or self.identifier)
                 if f]
        return f"{self.name} ({', '.join(facts)})"

    @property
    def ready(self) -> bool:
        """Ready for ``xcodebuild test``: connected, paired, developer services available, and a UDID."""
        return self.connected and self.paired and self.available and self.udid is not None

    def problem(self) -> str | None:
        """Why the phone is not ready, naming it and what to do, in one line (``None`` when it is ready)."""
        if self.ready:
            return None
        said = f" (devicectl: {self.detail})" if self.detail else ""
        if not self.paired:
            return (f"{self.label()} is not paired with this Mac{said}: connect it by cable, unlock it and tap "
                    f"Trust, then run again")
        if self.developer_mode_off:
            return (f"{self.label()} has Developer Mode off{said}: turn it on (Settings > Privacy & Security > "
                    f"Developer Mode), restart the phone, then run again")
        if self.reachable and not (self.connected and self.available):
            return (f"{self.label()} is idle or locked{said}: unlock it and keep it awake (screen on, or Auto-Lock "
                    f"set to Never while measuring), connected by cable, then run again")
        if not self.connected:
            return (f"{self.label()} is paired but not connected{said}: {NOT_READY_HINT}")
        if not self.available:
            return (f"{self.label()} has no developer services{said}: unlock it, open Xcode > Window > Devices "
                    f"and Simulators once so that Xcode prepares it, then run again")
        return (f"devicectl reports no UDID for {self.label()}, and xcodebuild is given phones by UDID only: name it "
                f"by its UDID (Finder, or Xcode > Window > Devices and Simulators, shows it) with --destination UDID")


def _ios_major(version: Any) -> int | None:
    head = str(version or "").split(".")[0]
    return int(head) if head.isdigit() else None


def parse_devicectl(doc: Mapping[str, Any]) -> list[Device]:
    """The devices in ``devicectl list devices --json-output`` JSON (``result.devices``).

    Connected means what a test run needs (see :class:`Device`): a phone that ``devicectl`` reports over
    ``localNetwork`` with ``tunnelState: disconnected`` and ``ddiServicesAvailable: false`` (asleep or locked) is
    reachable, not connected.

    Raises:
        DeviceUnavailableError: The JSON is not what ``devicectl`` writes.
    """
    devices = (doc.get("result") or {}).get("devices") if isinstance(doc, Mapping) else None
    if not isinstance(devices, list):
        raise DeviceUnavailableError("xcrun devicectl list devices wrote no device list (is Xcode 15 or later "
                                     "selected? xcode-select -p)")
    out = []
    for d in devices:
        hw = d.get("hardwareProperties") or {}
        props = d.get("deviceProperties") or {}
        conn = d.get("connectionProperties") or {}
        identifier = str(d.get("identifier", ""))
        transport, tunnel = conn.get("transportType"), conn.get("tunnelState")
        major = _ios_major(props.get("osVersionNumber"))
        if major is not None and major < _TUNNEL_IOS:
            connected = bool(transport)  # MobileDevice, no CoreDevice tunnel
        else:
            connected = tunnel == "connected"
        detail = ", ".join(f"{key} {value if not isinstance(value, bool) else str(value).lower()}"
                           for key, value in (("tunnelState", tunnel), ("transportType", transport),
                                              ("ddiServicesAvailable", props.get("ddiServicesAvailable")),
                                              ("pairingState", conn.get("pairingState")),
                                              ("developerModeStatus", props.get("developerModeStatus")))
                           if value is not None)
        out.append(Device(
            udid=str(hw["udid"]) if hw.get("udid") else None,
            identifier=identifier,
            name=str(props.get("name") or hw.get("marketingName") or identifier),
            product_type=hw.get("productType"),
            marketing_name=hw.get("marketingName"),
            platform=hw.get("platform"),
            os_version=props.get("osVersionNumber"),
            connected=connected,
            paired=conn.get("pairingState") in (None, "paired"),
            available=props.get("ddiServicesAvailable") is not False and props.get("developerModeStatus") != "disabled",
            reachable=bool(transport),
            detail=detail,
            developer_mode_off=props.get("developerModeStatus") == "disabled",
        ))
    return out


def _ios(devices: list[Device]) -> list[Device]:
    return [d for d in devices if d.platform in (None, "iOS")]


def _named(ios: list[Device], destination: str) -> Device:
    """The iOS device named by ``destination``: its UDID or CoreDevice identifier, else its name (case
    insensitive; a name two devices share is an error); a UDID ``devicectl`` does not list is taken as it is (an
    iOS 16 phone for which ``devicectl`` gives none)."""
    wanted = destination.strip().casefold()
    by_id = [d for d in ios if wanted in ((d.udid or "").casefold(), d.identifier.casefold())]
    if by_id:
        return by_id[0]
    named = [d for d in ios if d.name.casefold() == wanted]
    if len(named) > 1:
        raise UsageError(f"{len(named)} devices are named {destination!r} ({'; '.join(d.label() for d in named)}); "
                         f"name one by its UDID with --destination UDID")
    if named:
        return named[0]
    if looks_like_udid(destination):
        udid = destination.strip()
        return Device(udid=udid, identifier=udid, name=udid, product_type=None, marketing_name=None, platform="iOS",
                      os_version=None, connected=True, detail="not listed by devicectl; given by UDID")
    known = ", ".join(d.label() for d in ios) or "none"
    raise DeviceUnavailableError(f"no iOS device {destination!r} is known to this Mac (known: {known})")


def select_device(devices: list[Device], destination: str | None) -> Device:
    """The iOS device to run on: the one named by ``destination`` (UDID, CoreDevice identifier or name, case
    insensitive), or the only ready one.

    Raises:
        DeviceUnavailableError: No such device, or it is not ready (one line naming it and what to do: an idle or
            locked phone, one not connected, without Developer Mode, without a UDID).
        UsageError: Several devices are ready and none was named; a name two devices share.
    """
    ios = _ios(devices)
    if destination:
        device = _named(ios, destination)
        problem = device.problem()
        if problem:
            raise DeviceUnavailableError(problem)
        return device
    ready = [d for d in ios if d.ready]
    if not ready:
        waiting = [d.problem() for d in ios if d.reachable or d.connected]
        if len(waiting) == 1:
            raise DeviceUnavailableError(str(waiting[0]))
        raise DeviceUnavailableError(f"no iPhone is connected to this Mac and ready"
                                     f"{' (' + '; '.join(str(w) for w in waiting) + ')' if waiting else ''}: "
                                     f"{NOT_READY_HINT}")
    if len(ready) > 1:
        raise UsageError("several devices are connected: " + "; ".join(d.label() for d in ready)
                         + "; choose one with --destination NAME|UDID, several with --destination given more "
                           "than once, or all of them with --destination all")
    return ready[0]


def select_devices(devices: list[Device], destinations: Sequence[str]) -> list[Device]:
    """The iOS devices of a run on several: each one named in ``destinations`` (as :func:`select_device` matches
    it), once, in the order named, ready or not (the caller records a device that is not ready as failed, with
    :meth:`Device.problem`); or, for ``["all"]``, every ready iOS device.

    Raises:
        UsageError: No destination, an empty one, ``all`` beside other destinations, a name two devices share.
        DeviceUnavailableError: A name no iOS device of this Mac has; ``all`` and no device is ready; or none of
            the named devices is ready.
    """
    names = [str(d) for d in destinations]
    if not names or any(not n.strip() for n in names):
        raise UsageError("--destination needs a device name, UDID or CoreDevice identifier (or 'all')")
    ios = _ios(devices)
    if any(n.strip().casefold() == ALL_DEVICES for n in names):
        if len(names) > 1:
            raise UsageError("--destination all means every connected iPhone; give it alone, or name the devices")
        ready = [d for d in ios if d.ready]
        if not ready:
            raise DeviceUnavailableError(f"--destination all: no connected, paired and available iOS device "
                                         f"(known: {', '.join(d.label() for d in ios) or 'none'}): {NOT_READY_HINT}")
        return ready
    chosen = list(dict.fromkeys(_named(ios, n) for n in names))
    if not any(d.ready for d in chosen):
        raise DeviceUnavailableError("none of the named devices is ready: "
                                     + "; ".join(str(d.problem()) for d in chosen))
    return chosen


def destination_names(destination: str | Sequence[str] | None) -> list[str]:
    """``--destination`` as a list (``None`` -> ``[]``, one name -> ``[name]``)."""
    if destination is None:
        return []
    return [destination] if isinstance(destination, str) else [str(d) for d in destination]


def list_devices(folder: Path) -> list[Device]:
    """The devices this Mac knows (``xcrun devicectl list devices``, its JSON written into ``folder``).

    Raises:
        MeasurementError: ``devicectl`` failed.
        DeviceUnavailableError: Its JSON cannot be read or is not a device list.
    """
    path = Path(folder) / "devices.json"
    commands.check(commands.run(commands.devicectl_argv(path)), "xcrun devicectl list devices")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeviceUnavailableError(f"cannot read the device list {path.name}: {exc}") from None
    return parse_devicectl(doc)


def choose(folder: Path, names: Sequence[str]) -> list[Device]:
    """The iPhones of a run: :func:`select_devices` when several are named (or ``all``), else the one
    :func:`select_device` picks (the one named, or the only connected one)."""
    known = list_devices(folder)
    several = len(names) > 1 or any(n.strip().casefold() == ALL_DEVICES for n in names)
    if several:
        return select_devices(known, names)
    return [select_device(known, names[0] if names else None)]


def reported_device(device: Device) -> dict[str, Any]:
    """What the harness would report of a phone, as far as ``devicectl`` knows it (the device of records made
    before the harness reported: a phone not connected, a model that failed to export)."""
    return {"model_identifier": device.product_type or device.udid or device.identifier, "os_name": "iOS",
            "os_version": os_version3(device.os_version) if device.os_version else None}
