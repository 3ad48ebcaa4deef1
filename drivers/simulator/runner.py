"""Build a running simulated BlueZ from a scenario (used by the CLI and the test fixtures)."""

from drivers.capture import Capture
from drivers.simulator.device import AttFault, Faults, Pairing, SimDevice
from drivers.simulator.profiles import profile_for
from drivers.simulator.profiles.replay import ReplayProfile
from drivers.simulator.scenario import DeviceSpec, Scenario
from drivers.simulator.server import DEFAULT_ADVERTISE_INTERVAL_S, Simulator


def device_from_spec(simulator: Simulator, spec: DeviceSpec, zone: str) -> SimDevice:
    """A simulated device as the scenario describes it."""
    fault_spec = spec.faults
    faults = Faults(
        drop_link_after=fault_spec.drop_link_after,
        drop_link_every=fault_spec.drop_link_every,
        connect_failures=fault_spec.connect_failures,
        connect_latency_s=fault_spec.connect_latency_ms / 1000,
        notify_interval_s=fault_spec.notify_interval_ms / 1000,
        out_of_range=fault_spec.out_of_range,
        idle_disconnect_s=fault_spec.idle_disconnect_ms / 1000,
        att_errors=[AttFault(e.uuid, e.op, e.code, e.times) for e in fault_spec.att_errors],
    )
    pairing = None
    if spec.passkey is not None or spec.pairing is not None:
        pairing = Pairing(method=spec.pairing or "passkey", passkey=spec.passkey)
    return SimDevice(
        simulator,
        address=spec.address,
        name=spec.name,
        profile=profile_for(spec, zone),
        pairing=pairing,
        faults=faults,
        rssi=spec.rssi,
    )


async def start_simulator(
    scenario: Scenario,
    bus_address: str,
    *,
    advertise_interval_s: float = DEFAULT_ADVERTISE_INTERVAL_S,
    temporary_timeout_s: float | None = None,
) -> Simulator:
    """Start a simulated BlueZ on `bus_address` holding the scenario's devices."""
    kwargs = {} if temporary_timeout_s is None else {"temporary_timeout_s": temporary_timeout_s}
    simulator = Simulator(bus_address, advertise_interval_s=advertise_interval_s, **kwargs)
    await simulator.start()
    for spec in scenario.devices:
        simulator.add(device_from_spec(simulator, spec, scenario.timezone))
    return simulator


async def start_replay(
    capture: Capture,
    bus_address: str,
    *,
    advertise_interval_s: float = DEFAULT_ADVERTISE_INTERVAL_S,
) -> Simulator:
    """Start a simulated BlueZ on `bus_address` serving the captured device."""
    simulator = Simulator(bus_address, advertise_interval_s=advertise_interval_s)
    await simulator.start()
    name = capture.advert.get("name") or capture.name
    simulator.add(
        SimDevice(simulator, address=capture.address, name=name, profile=ReplayProfile(capture))
    )
    return simulator
