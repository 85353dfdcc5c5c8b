"""Which iPhones to run on: the devices ``xcrun devicectl list devices --json-output FILE`` describes, and the
choice of one, several or all of them from ``--destination``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mobileone_bench.devices.apple import commands
from mobileone_bench.devices.apple.report import os_version3
from mobileone_bench.errors import DeviceUnavailableError, UsageError

__all__ = ["ALL_DEVICES", "NOT_READY_HINT", "Device", "parse_devicectl", "select_device", "select_devices",
           "destination_names", "list_devices", "choose", "reported_device"]

#: ``--destination all``: every connected, paired and available iOS device.
ALL_DEVICES = "all"
#: What to do about a phone that is not ready.
NOT_READY_HINT = ("connect and unlock it, trust this Mac, and turn on Developer Mode (Settings > Privacy & "
                  "Security)")


@dataclass(frozen=True)
class Device:
    """A device as ``devicectl`` describes it.

    Attributes:
        udid: The UDID ``xcodebuild -destination id=...`` takes (``hardwareProperties.udid``); ``None`` when
            ``devicectl`` gives no hardware UDID (as for some iOS 16 devices): the CoreDevice identifier is not
            a UDID, so :func:`~mobileone_bench.devices.apple.commands.xcodebuild_destination` then names the device
            instead.
        identifier: The CoreDevice identifier (what ``devicectl --device`` takes).
        name: The name the user gave the device.
        product_type: Model identifier (``iPhone13,2``), what the harness reports; ``None`` when unknown.
        marketing_name: ``iPhone 12``; ``None`` when unknown.
        platform: ``iOS``, ``watchOS``...; ``None`` when unknown.
        os_version: ``17.5.1``; ``None`` when unknown.
        connected: Reachable now (wired, on the network, or tunnel up), not merely remembered.
        paired: ``connectionProperties.pairingState`` is ``paired`` (``True`` when ``devicectl`` does not say).
        available: Ready for development: its developer disk image services are not reported unavailable and
            Developer Mode is not reported disabled (``True`` when ``devicectl`` does not say).
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

    def label(self) -> str:
        """``Jane's iPhone (iPhone 12, iOS 17.5.1, 00008101-...)``."""
        facts = [f for f in (self.marketing_name or self.product_type,
                             f"{self.platform or 'iOS'} {self.os_version}" if self.os_version else None,
                             self.udid or self.identifier)
                 if f]
        return f"{self.name} ({', '.join(facts)})"


def parse_devicectl(doc: Mapping[str, Any]) -> list[Device]:
    """The devices in ``devicectl list devices --json-output`` JSON (``result.devices``).

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
        out.append(Device(
            udid=str(hw["udid"]) if hw.get("udid") else None,
            identifier=identifier,
            name=str(props.get("name") or hw.get("marketingName") or identifier),
            product_type=hw.get("productType"),
            marketing_name=hw.get("marketingName"),
            platform=hw.get("platform"),
            os_version=props.get("osVersionNumber"),
            connected=bool(conn.get("transportType")) or conn.get("tunnelState") == "connected",
            paired=conn.get("pairingState") in (None, "paired"),
            available=props.get("ddiServicesAvailable") is not False and props.get("developerModeStatus") != "disabled",
        ))
    return out


def _ios(devices: list[Device]) -> list[Device]:
    return [d for d in devices if d.platform in (None, "iOS")]


def _named(ios: list[Device], destination: str) -> Device:
    """The iOS device named by ``destination`` (UDID, CoreDevice identifier or name, case insensitive)."""
    wanted = destination.strip().casefold()
    matches = [d for d in ios if wanted in ((d.udid or "").casefold(), d.identifier.casefold(), d.name.casefold())]
    if not matches:
        known = ", ".join(d.label() for d in ios) or "none"
        raise DeviceUnavailableError(f"no iOS device {destination!r} is known to this Mac (known: {known})")
    return matches[0]


def select_device(devices: list[Device], destination: str | None) -> Device:
    """The iOS device to run on: the one named by ``destination`` (UDID, CoreDevice identifier or name, case
    insensitive), or the only connected one.

    Raises:
        DeviceUnavailableError: No such device, or it is not connected.
        UsageError: Several devices are connected and none was named.
    """
    ios = _ios(devices)
    if destination:
        device = _named(ios, destination)
        if not device.connected:
            raise DeviceUnavailableError(f"{device.label()} is paired but not connected: {NOT_READY_HINT}")
        return device
    connected = [d for d in ios if d.connected]
    if not connected:
        raise DeviceUnavailableError(f"no iPhone is connected to this Mac: {NOT_READY_HINT}")
    if len(connected) > 1:
        raise UsageError("several devices are connected: " + "; ".join(d.label() for d in connected)
                         + "; choose one with --destination NAME|UDID, several with --destination given more "
                           "than once, or all of them with --destination all")
    return connected[0]


def select_devices(devices: list[Device], destinations: Sequence[str]) -> list[Device]:
    """The iOS devices of a run on several: each one named in ``destinations`` (as :func:`select_device` matches
    it), once, in the order named, connected or not (the caller records a device that is not connected as failed);
    or, for ``["all"]``, every connected, paired and available iOS device.

    Raises:
        UsageError: No destination, an empty one, or ``all`` beside other destinations.
        DeviceUnavailableError: A name no iOS device of this Mac has; ``all`` and no device is ready; or none of
            the named devices is connected.
    """
    names = [str(d) for d in destinations]
    if not names or any(not n.strip() for n in names):
        raise UsageError("--destination needs a device name, UDID or CoreDevice identifier (or 'all')")
    ios = _ios(devices)
    if any(n.strip().casefold() == ALL_DEVICES for n in names):
        if len(names) > 1:
            raise UsageError("--destination all means every connected iPhone; give it alone, or name the devices")
        ready = [d for d in ios if d.connected and d.paired and d.available]
        if not ready:
            raise DeviceUnavailableError(f"--destination all: no connected, paired and available iOS device "
                                         f"(known: {', '.join(d.label() for d in ios) or 'none'}): {NOT_READY_HINT}")
        return ready
    chosen = list(dict.fromkeys(_named(ios, n) for n in names))
    if not any(d.connected for d in chosen):
        raise DeviceUnavailableError(f"none of the named devices is connected "
                                     f"({'; '.join(d.label() for d in chosen)}): {NOT_READY_HINT}")
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
