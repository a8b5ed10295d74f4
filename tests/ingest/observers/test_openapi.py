"""The served OpenAPI document is true: schemathesis drives the running server (a real `turnout-watch
observers serve` process on the real broker) and every answer must match the document, with no 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ingest.observers.views import _openapi_text
from tests.support.intake import make_settings, prepare_registry
from tests.support.paths import DAY_2022
from turnout_watch.services.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration
TOKENS: dict[str, str] = {}
#: Generated requests per operation, new ones each run; raise it to fuzz deeper (README, Development).
EXAMPLES = int(os.environ.get("TURNOUT_WATCH_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def api_schema(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("openapi")
    config = make_settings(broker.bootstrap, data_dir)
    TOKENS.update(prepare_registry(config))
    port = free_port()
    env = {
        **os.environ,
        "TURNOUT_WATCH_TOPIC_PREFIX": config.topic_prefix,
        "TURNOUT_WATCH_DATA_DIR": str(data_dir),
        "TURNOUT_WATCH_OBSERVERS_RATE": "100000",
        "TURNOUT_WATCH_OBSERVERS_BURST": "100000",
    }
    cmd = [sys.executable, "-m", "turnout_watch.cli", "--broker", broker.bootstrap, "observers", "serve",
           "--day", str(DAY_2022), "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"server did not start: {server.communicate()[0].decode()}") from None
            time.sleep(0.2)
    try:
        yield schemathesis.openapi.from_url(base + "/openapi.json")  # the document as served
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
        assert "Traceback" not in output, output


def test_every_answer_matches_the_document(api_schema: Any) -> None:
    """Each operation with generated requests (valid and not), authenticated as a coordinator for
    every test station; schemathesis' checks: no 5xx, documented status, content type, headers and
    body schema. (Its pytest plugin does not work with pytest 9, so hypothesis drives it here.)"""
    auth = {"Authorization": f"Bearer {TOKENS['all']}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/counts", "/v1/counts.csv", "/v1/stations/{station}", "/healthz"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            if case.operation.path.startswith("/v1/"):
                case.headers = {**(case.headers or {}), **auth}
            # Excluded: "schema-valid request accepted". A count can match the schema and still be
            # refused on its meaning (no such station, outside polling hours), with a documented 422.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_document_is_served_as_written(api_schema: Any) -> None:
    assert api_schema.raw_schema == yaml.safe_load(_openapi_text())


def test_document_agrees_with_the_validating_code() -> None:
    """The document cannot drift from the code that validates: the fields `check_count` knows are the
    CountIn properties, every error code the intake can give is in the ItemError enum, every field the
    published record can carry is a CountRecord property, and each body status the views give is documented."""
    import re
    from pathlib import Path

    from ingest.observers import validation
    from turnout_watch.core.records import OBSERVER_COUNT_KEYS

    doc = yaml.safe_load(_openapi_text())
    schemas = doc["components"]["schemas"]
    assert set(schemas["CountIn"]["properties"]) == validation.FIELDS
    assert schemas["CountIn"]["properties"]["station"]["maxLength"] == validation.MAX_TEXT
    package = Path(validation.__file__).parent
    used = set()
    for module in ("validation.py", "intake.py"):
        used |= set(re.findall(r'ItemError\(\s*"([a-z_]+)"', (package / module).read_text()))
    assert used and used <= set(schemas["ItemError"]["properties"]["code"]["enum"])
    assert set(schemas["CountRecord"]["properties"]) == OBSERVER_COUNT_KEYS
    statuses = set(re.findall(r"BodyError\((\d{3})", (package / "bodies.py").read_text()))
    for path in ("/v1/counts", "/v1/counts.csv"):
        assert statuses <= set(doc["paths"][path]["post"]["responses"]), path
