"""Device drivers: one per device family behind one ABC, and a registry that picks one.

- `base`: the contract (`Driver.match` / `Driver.collect`, `Advertisement`, `DeviceMatch`,
  `Cursor`, `CollectContext`, `Transfer`, `Notice`).
- `registry`: `DriverRegistry`, `default_registry()`.
- `brands`: who made a SIG device, its Junction provider slug, how to pair it.
- `sig_glucose`, `sig_blood_pressure`, `sig_scale`: the SIG-profile drivers.
- `sig`, `racp_client`, `stream`: what those share (matching, RACP procedures, stream ends).
"""
