"""Tiny readers for the packaging files: systemd units (repeated keys) and Dockerfiles."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a systemd unit, each a list of (key, value) in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path}: {line!r} outside a section"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    """Every value of `key` in a section, split on whitespace (systemd lists)."""
    return [word for k, v in section if k == key for word in v.split()]


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    name: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array form of the arguments, or None for the shell form."""
        try:
            parsed = json.loads(self.args)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None


def read_dockerfile(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile (comments dropped, `\\` continuations joined)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        name, _, args = text.partition(" ")
        instructions.append(Instruction(name.upper(), re.sub(r"\s+", " ", args).strip()))
    return instructions
