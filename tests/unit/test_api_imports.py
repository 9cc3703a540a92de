"""The API functions are product code: loading them pulls in neither the test data nor the streaming stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
API_FUNCTIONS = ["api-traffic", "api-transport", "api-mobility", "api-incidents", "api-analytics"]
# In a fresh interpreter (this test session has imported all of these already): load the functions through the
# real loader, build their apps, and say which of the heavy or test-only packages got imported.
PROBE = """
import json, sys, tempfile
from pathlib import Path
from smartcity.runtime.loader import load_stack
from smartcity.settings import Settings

folder = Path(tempfile.mkdtemp())
settings = Settings(database_url=f"sqlite:///{folder}/smartcity.db", cache_url="memory://probe",
                    documents_url=f"embedded:///{folder}/documents.db", bus_url=f"file://{folder}/bus",
                    objects_url=f"file://{folder}/objects", secrets_dir=folder)
loaded = load_stack(settings.stack_file, settings, sys.argv[1:])
print(json.dumps({"apps": [function.name for function in loaded if function.app is not None],
                  "imported": sorted(name for name in ("pyspark", "pandas", "streaming", "tests") if name in sys.modules)}))
"""


def test_the_api_functions_load_without_test_data_or_pyspark():
    result = subprocess.run([sys.executable, "-c", PROBE, *API_FUNCTIONS], cwd=PROJECT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"apps": API_FUNCTIONS, "imported": []}
