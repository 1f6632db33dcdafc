"""evil-py natively: good iterations copy their rows; the attacks that do
not need a sandbox to fail do fail."""

import pytest

import app
from corral_guest import EmitError
from corral_guest.testing import MemoryHost

CONFIG = {"id": [1, 2, 3], "some_column": [1, 2, 2], "value": [0.5, 1.5, 2.5]}


def test_good_iterations_copy_their_rows():
    result = MemoryHost(CONFIG, params={"evil": {"1": "error"}}).run(app.run, iteration=2)
    assert result.to_pydict() == {"id": [2, 3], "some_column": [2, 2], "value": [1.5, 2.5]}


def test_an_error_raises_and_a_malformed_output_is_refused():
    host = MemoryHost(CONFIG, params={"evil": {"1": "error", "2": "malformed-output", "3": "nonsense"}})
    with pytest.raises(ValueError, match="diverged"):
        host.run(app.run, 1)
    with pytest.raises(EmitError):
        host.run(app.run, 2)
    with pytest.raises(ValueError, match="no behaviour"):
        host.run(app.run, 3)
