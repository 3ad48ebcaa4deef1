"""The local REST API (`/v1`), live events, `/metrics` and the kiosk page; see `gateway.app`.

FastAPI checks every route's parameter and response types against `pydantic.v1.BaseModel`
(to refuse Pydantic 1 models), importing `pydantic.v1` to do so: ~1 MiB of `run`'s resident
memory for a check that can only say no, since the gateway has no Pydantic 1 models and no
dependency uses them. A None entry in `sys.modules` makes that import fail, and FastAPI then
treats nothing as a Pydantic 1 model (`fastapi._compat.shared.is_pydantic_v1_model_class`
catches the ImportError). `setdefault`: a process that already imported it keeps it.
"""

import sys

sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
