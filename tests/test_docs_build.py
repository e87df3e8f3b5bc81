"""The API reference builds from the docstrings, offline, with every warning an error."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def test_the_docs_config_fetches_nothing():
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    python = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    assert "import" not in python and "inventories" not in python  # no objects.inv fetches
    assert config["strict"] is True
    pages = {p.name for p in (ROOT / "docs" / "api").glob("*.md")}
    assert {"embedding.md", "data.md", "models.md", "hub.md"} <= pages


@pytest.mark.skipif(importlib.util.find_spec("mkdocstrings") is None,
                    reason="needs neurofm[docs]")
def test_api_reference_builds_strict(tmp_path):
    offline = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_PROXY": "*",
               "https_proxy": "http://0.0.0.0:9", "http_proxy": "http://0.0.0.0:9"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False, env=offline)
    assert done.returncode == 0, done.stderr[-4000:]
    page = (tmp_path / "site" / "api" / "embedding" / "index.html").read_text(encoding="utf-8")
    assert 'id="neurofm.embedding.embed"' in page and "Embedder" in page
