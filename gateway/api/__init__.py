"""The local REST API (`/v1`), live events, `/metrics` and the kiosk page; see `gateway.app`."""
