"""The C kernel library's build (``neurofm.nn.cpu_kernels``); the build's cache, a missing or
failing compiler and OpenMP-less builds are covered in ``test_nn_scan.py``."""

import fnmatch
import tomllib
from pathlib import Path

from neurofm.nn import cpu_kernels

ROOT = Path(__file__).resolve().parents[1]


def test_every_kernel_source_and_header_ships_with_the_package():
    """A wheel without one of them would fall back to PyTorch on every user's machine."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["neurofm"]
    package = ROOT / "neurofm"
    for path in cpu_kernels.SOURCES + cpu_kernels.HEADERS:
        assert path.exists(), path
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    assert {p.name for p in package.joinpath("nn").glob("*.[ch]")} == {
        p.name for p in cpu_kernels.SOURCES + cpu_kernels.HEADERS}


def test_the_build_key_covers_every_source_and_header(monkeypatch, tmp_path):
    flags = cpu_kernels.FLAG_SETS[0]
    key = cpu_kernels._build_key("cc 1.0", flags)
    assert cpu_kernels._build_key("cc 1.1", flags) != key
    assert cpu_kernels._build_key("cc 1.0", cpu_kernels.FLAG_SETS[1]) != key
    for i, path in enumerate(cpu_kernels.SOURCES + cpu_kernels.HEADERS):
        copy = tmp_path / f"{i}-{path.name}"
        copy.write_bytes(path.read_bytes() + b"\n/* changed */\n")
        sources = tuple(copy if p == path else p for p in cpu_kernels.SOURCES)
        headers = tuple(copy if p == path else p for p in cpu_kernels.HEADERS)
        monkeypatch.setattr(cpu_kernels, "SOURCES", sources)
        monkeypatch.setattr(cpu_kernels, "HEADERS", headers)
        assert cpu_kernels._build_key("cc 1.0", flags) != key, path.name
        monkeypatch.undo()
