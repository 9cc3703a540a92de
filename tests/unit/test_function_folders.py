"""Each function of stack.yml is a complete folder: its handler and its own test, which names the function."""

from __future__ import annotations

import pytest
import yaml

from smartcity.settings import PROJECT_ROOT

FUNCTIONS = yaml.safe_load((PROJECT_ROOT / "stack.yml").read_text())["functions"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_functions_folder_holds_its_handler_and_its_test(name):
    folder = (PROJECT_ROOT / FUNCTIONS[name]["handler"]).resolve()
    assert folder == PROJECT_ROOT / "functions" / name
    assert (folder / "handler.py").is_file()
    test = folder / "handler_test.py"
    assert test.is_file(), f"functions/{name} has no handler_test.py"
    assert name in test.read_text(), f"functions/{name}/handler_test.py does not name its function"
