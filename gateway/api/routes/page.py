"""`/`: the kiosk page (plain HTML/JS from `gateway/static`, no build step)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The kiosk page; its assets are under `/static/`."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
