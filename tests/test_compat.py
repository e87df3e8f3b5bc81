"""Optional peers: braindecode imports quietly, and a missing extra is named, never a traceback."""

import subprocess
import sys

import pytest
from extras import needs_braindecode

from neurofm import compat


@needs_braindecode
def test_braindecode_models_import_prints_no_future_warning():
    code = ("from neurofm.compat import braindecode_models; "
            "m = braindecode_models(); print(m.EEGNet.__name__)")
    done = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "EEGNet"
    assert "FutureWarning" not in done.stderr


@needs_braindecode
def test_the_quiet_import_leaves_the_warning_filters_as_they_were():
    import warnings

    before = list(warnings.filters)
    compat.braindecode_models()
    assert warnings.filters == before


def test_braindecode_that_cannot_load_is_a_missing_extra(monkeypatch):
    """torchaudio beside a newer torch fails with OSError: that too names the extra."""
    monkeypatch.setattr(compat, "braindecode_import_error",
                        lambda: "OSError: libtorchaudio.so: undefined symbol")
    assert not compat.braindecode_available()
    with pytest.raises(compat.MissingExtraError) as err:
        compat.braindecode_models("the EEGNet baseline")
    message = str(err.value)
    assert message.startswith("the EEGNet baseline needs braindecode")
    assert "pip install 'neurofm[braindecode]'" in message and "OSError" in message
    assert isinstance(err.value, ImportError)


#: Not imported by the walk: the entry script, NeuroFM (checked apart) and the MOABB stand-ins
#: (a module of the moabb extra, imported only by its tests and benchmarks).
SKIP = ("neurofm.__main__", "neurofm.interop.braindecode_model",
        "neurofm.datasets.moabb_standins")


def test_the_core_imports_without_braindecode_or_torchaudio():
    """Every module imports with both blocked, but NeuroFM's, which names the extra."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('braindecode', 'torchaudio'):\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib, pkgutil, neurofm\n"
        f"skip = {SKIP!r}\n"
        "names = [m.name for m in pkgutil.walk_packages(neurofm.__path__, 'neurofm.')\n"
        "         if not m.name.startswith(skip)]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "import neurofm.compat as c\n"
        "try:\n"
        "    import neurofm.interop.braindecode_model\n"
        "except c.MissingExtraError as err:\n"
        "    assert \"pip install 'neurofm[braindecode]'\" in str(err), err\n"
        "else:\n"
        "    raise AssertionError('NeuroFM imported without braindecode')\n"
        "print(len(names), c.braindecode_available())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    n, available = done.stdout.split()
    assert int(n) > 50 and available == "False"
