"""Every third-party import in ``neurofm/`` is declared in pyproject.toml, and the core declares
nothing it does not use.

Imports are read from the source (function-local ones included). A distribution counts as
declared when the core ``dependencies`` or one of the feature extras (not ``dev``, which holds
test tools) lists it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

#: Import names whose distribution may not be installed here (CUDA-only kernels).
NOT_INSTALLED_HERE = {"mamba_ssm": "mamba-ssm", "xformers": "xformers"}
#: Core dependencies that neurofm does not import but needs at run time, and why.
RUNTIME_ONLY = {"edfio": "mne.export writes EDF files with it (neurofm simulate)"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements) -> set[str]:
    names = {normalise(Requirement(r).name) for r in requirements}
    return names - {"neurofm"}


def third_party_imports() -> dict[str, list[str]]:
    """``{top-level module: ["path:line", ...]}`` of every non-stdlib, non-neurofm import."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "neurofm").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "neurofm" and top not in sys.stdlib_module_names:
                    found.setdefault(top, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


DISTRIBUTIONS = packages_distributions()


def distribution_of(module: str) -> str:
    dists = DISTRIBUTIONS.get(module) or [NOT_INSTALLED_HERE.get(module, module)]
    return normalise(dists[0])


CORE = requirement_names(PYPROJECT["dependencies"])
EXTRAS = {extra: requirement_names(reqs)
          for extra, reqs in PYPROJECT["optional-dependencies"].items()}
FEATURES = set().union(*(names for extra, names in EXTRAS.items() if extra != "dev"))


def test_every_third_party_import_is_declared():
    imports = third_party_imports()
    assert {"torch", "mne", "numpy"} <= set(imports)  # the reader sees the package
    undeclared = {module: where[:3] for module, where in imports.items()
                  if distribution_of(module) not in CORE | FEATURES}
    assert not undeclared, ("imported but not declared in pyproject.toml (add them to "
                            f"dependencies or to the extra of the feature): {undeclared}")


def test_the_core_declares_only_what_neurofm_uses():
    used = {distribution_of(module) for module in third_party_imports()}
    unused = sorted(CORE - used - set(RUNTIME_ONLY))
    assert not unused, f"core dependencies that neurofm never imports: {unused}"


def test_optional_peers_stay_out_of_the_core():
    assert not CORE & {"braindecode", "torchaudio", "tensorboard", "moabb", "pybv", "eeglabio",
                       "einops", "causal-conv1d"}
    torch = next(Requirement(r) for r in PYPROJECT["dependencies"]
                 if Requirement(r).name == "torch")
    assert "2.11.0" in torch.specifier and "2.13.0" in torch.specifier
    assert "2.14.1" in torch.specifier and "2.10.0" not in torch.specifier


def test_the_braindecode_extra_pins_torch_and_torchaudio_as_a_pair():
    """torchaudio loads only beside the torch it was built for (2.11.1 fails beside 2.11.0)."""
    pins = {Requirement(r).name: str(Requirement(r).specifier)
            for r in PYPROJECT["optional-dependencies"]["braindecode"]}
    assert pins["torch"] == pins["torchaudio"] == "==2.11.0"


def test_the_dev_extra_installs_every_feature_extra():
    dev = next(Requirement(r) for r in PYPROJECT["optional-dependencies"]["dev"]
               if Requirement(r).name == "neurofm")
    assert {"braindecode", "moabb", "tensorboard", "docs"} <= dev.extras
