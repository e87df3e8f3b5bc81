"""Docker is not available on CI machines: check the Dockerfiles against the repository instead."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cpu"]


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist(dockerfile):
    copies = [rest.split() for op, rest in _instructions(dockerfile) if op == "COPY"]
    assert copies, f"{dockerfile.name} copies nothing"
    for args in copies:
        for src in args[:-1]:
            assert (ROOT / src).exists(), f"{dockerfile.name}: COPY source {src} does not exist"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_installs_from_pyproject_extras(dockerfile):
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    runs = " ".join(rest for op, rest in _instructions(dockerfile) if op == "RUN")
    assert re.search(r"pip install [^&]*\s\.(\s|$|\[)", runs + " "), "must pip install the project"
    for used in re.findall(r"\.\[([a-z0-9_,-]+)\]", runs):
        for extra in used.split(","):
            assert extra in extras, f"{dockerfile.name} uses extra [{extra}] not in pyproject.toml"


def test_cuda_image_has_cuda_extra_and_entrypoint():
    runs = " ".join(rest for op, rest in _instructions(DOCKERFILES[0]) if op == "RUN")
    assert '".[cuda]"' in runs
    entry = ROOT / "docker" / "entrypoint.sh"
    assert entry.stat().st_mode & 0o111, "entrypoint.sh must be executable"
    assert "exec neurofm" in entry.read_text()
