"""seed-model-py natively, under the SDK's MemoryHost."""

import app
from corral_guest.testing import MemoryHost

CONFIG = {
    "id": [1, 2, 3, 4],
    "some_column": [0, 1, 1, 2],
    "value": [1.0, 2.0, None, 4.0],
    "weight": [0.5, 0.25, 1.0, 2.0],
    "name": ["a", None, "c", "d"],
}


def test_scores_the_iterations_rows():
    host = MemoryHost(CONFIG, params={"param1": 2.0, "param2": 4.0})
    result = host.run(app.run, iteration=1)
    assert result.to_pydict() == {"id": [2, 3], "some_column": [1, 1], "score": [5.0, None], "name": [None, "c"]}
    assert result.schema.names == ["id", "some_column", "score", "name"]


def test_an_iteration_without_rows_emits_an_empty_output():
    result = MemoryHost(CONFIG, params={"param1": 1, "param2": 1}).run(app.run, iteration=9)
    assert result.num_rows == 0 and result.schema.names == ["id", "some_column", "score", "name"]
