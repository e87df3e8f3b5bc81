"""Skip marks for tests of optional features: they skip only when the extra is missing.

Development and CI install every extra (``pip install -e ".[dev]"``), so there nothing skips.
"""

import pytest

from neurofm.compat import braindecode_available, needs_extra

#: braindecode (and the torchaudio it imports) load beside this torch.
needs_braindecode = pytest.mark.skipif(not braindecode_available(),
                                       reason=needs_extra("braindecode"))
