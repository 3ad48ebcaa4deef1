"""The driver registry: which driver claims an advertisement.

Drivers are asked in order and the first claim wins, so list specific drivers before generic
ones. `default_registry()` holds every driver this package ships.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from drivers.devices.base import Advertisement, DeviceMatch, Driver
from drivers.devices.sig_blood_pressure import SigBloodPressureDriver
from drivers.devices.sig_glucose import SigGlucoseDriver
from drivers.devices.sig_scale import SigScaleDriver


@dataclass(frozen=True, slots=True)
class Claim:
    """A driver and what it recognised."""

    driver: Driver
    match: DeviceMatch


class DriverRegistry:
    """An ordered set of drivers, matched against advertisements."""

    def __init__(self, drivers: Iterable[Driver]) -> None:
        self._drivers = tuple(drivers)
        names = [d.name for d in self._drivers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            msg = f"driver registry: names {duplicates} are used twice; give each driver its own"
            raise ValueError(msg)

    @property
    def drivers(self) -> tuple[Driver, ...]:
        """Every driver, in matching order."""
        return self._drivers

    def match(self, advertisement: Advertisement) -> Claim | None:
        """The first driver claiming the advertised device.

        Args:
            advertisement: What the scanner heard.

        Returns:
            The claim, or None when no driver handles the device.
        """
        for driver in self._drivers:
            found = driver.match(advertisement)
            if found is not None:
                return Claim(driver, found)
        return None

    def get(self, name: str) -> Driver:
        """The driver called `name` (as stored with a device).

        Raises:
            LookupError: No such driver in this registry.
        """
        for driver in self._drivers:
            if driver.name == name:
                return driver
        known = ", ".join(d.name for d in self._drivers)
        msg = f"driver {name!r} is not registered (known: {known}); re-pair the device"
        raise LookupError(msg)


def default_registry() -> DriverRegistry:
    """Every driver the gateway ships: SIG glucose, blood pressure and scale."""
    # Imported here so that `base` and this module stay importable on their own.

    return DriverRegistry([SigGlucoseDriver(), SigBloodPressureDriver(), SigScaleDriver()])
