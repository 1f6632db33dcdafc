"""one-row-py natively."""

import app
from corral_guest.testing import MemoryHost


def test_emits_its_iterations_row():
    result = MemoryHost({"unused": [1]}).run(app.run, iteration=41)
    assert result.to_pylist() == [{"iteration": 41, "label": "iteration 41"}]
