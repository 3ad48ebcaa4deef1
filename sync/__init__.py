"""Reading → Junction: the outbox contract, the uploader, and the Junction client and stub.

- `sync.outbox`: the `Outbox` protocol the store implements, and its value types.
- `sync.memory_outbox`: the in-memory outbox (tests, benchmarks, demo).
- `sync.uploader`: the prioritised, resumable upload loop (`Uploader`, `build_uploader`).
- `sync.priority`, `sync.backoff`, `sync.errors`: pure scheduling, retry policy, error tree.
- `sync.junction`: `mapping` (pure, units), `schemas`, `regions`, `auth`, `client`, `stub`.

Imports only `drivers.readings` from the drivers package, never `gateway`.
"""
