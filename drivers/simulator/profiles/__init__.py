"""Simulated device families, by scenario `kind`."""

from drivers.simulator.profiles.base import Profile
from drivers.simulator.profiles.blood_pressure import BloodPressureProfile
from drivers.simulator.profiles.glucose import GlucoseProfile
from drivers.simulator.profiles.scale import ScaleProfile
from drivers.simulator.scenario import BloodPressureDevice, DeviceSpec, GlucoseDevice


def profile_for(spec: DeviceSpec, zone: str) -> Profile:
    """The behaviour for one scenario device."""
    if isinstance(spec, GlucoseDevice):
        return GlucoseProfile(spec, zone)
    if isinstance(spec, BloodPressureDevice):
        return BloodPressureProfile(spec, zone)
    return ScaleProfile(spec, zone)


__all__ = ["Profile", "profile_for"]
