"""Optional peers import quietly: braindecode's import-time MNE deprecations are not shown."""

import subprocess
import sys


def test_braindecode_models_import_prints_no_future_warning():
    code = ("from neurofm.compat import braindecode_models; "
            "m = braindecode_models(); print(m.EEGNet.__name__)")
    done = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "EEGNet"
    assert "FutureWarning" not in done.stderr


def test_the_quiet_import_leaves_the_warning_filters_as_they_were():
    import warnings

    from neurofm.compat import braindecode_models

    before = list(warnings.filters)
    braindecode_models()
    assert warnings.filters == before
