"""``smartcity token``: local keys, tokens the API accepts, how-to-call examples, and clear refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from smartcity.api.auth import KeyRing, Role, verify_token
from smartcity.cli import app
from smartcity.settings import Settings

runner = CliRunner(env={"COLUMNS": "200"})  # rich wraps errors at the terminal width


@pytest.fixture
def secrets_dir(tmp_path):
    result = runner.invoke(app, ["token", "keys", "--secrets-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("wrote ") == 3
    return tmp_path


@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_an_issued_token_is_one_the_api_accepts(secrets_dir, alg):
    result = runner.invoke(app, ["token", "issue", "--role", "operator", "--alg", alg, "--ttl", "15m",
                                 "--subject", "ops", "--secrets-dir", str(secrets_dir)])
    assert result.exit_code == 0, result.output
    principal = verify_token(KeyRing(Settings(secrets_dir=secrets_dir)), result.output.strip())
    assert (principal.subject, principal.role) == ("ops", Role.operator)


def test_keys_are_kept_on_a_second_run(secrets_dir):
    result = runner.invoke(app, ["token", "keys", "--secrets-dir", str(secrets_dir)])
    assert result.exit_code == 0 and "exist already" in result.output


@pytest.mark.parametrize(
    "arguments, message",
    [(["--role", "boss"], "boss"), (["--role", "viewer", "--ttl", "0"], "positive duration"),
     (["--role", "viewer", "--alg", "none"], "'none' is not one of")],
)
def test_bad_options_are_refused_naming_them(secrets_dir, arguments, message):
    result = runner.invoke(app, ["token", "issue", *arguments, "--secrets-dir", str(secrets_dir)])
    assert result.exit_code != 0 and message in result.output


def test_issuing_without_keys_says_how_to_make_them(tmp_path):
    result = runner.invoke(app, ["token", "issue", "--role", "viewer", "--secrets-dir", str(tmp_path)])
    assert result.exit_code != 0 and "smartcity token keys" in result.output


def test_examples_print_the_docs_page_a_token_and_curl_commands(secrets_dir):
    result = runner.invoke(app, ["token", "examples", "--base-url", "http://127.0.0.1:9999", "--secrets-dir", str(secrets_dir)])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9999/v1/docs" in result.output
    token = next(line.split("=", 1)[1] for line in result.output.splitlines() if "export TOKEN=" in line)
    assert verify_token(KeyRing(Settings(secrets_dir=secrets_dir)), token).role == Role.viewer
    assert 'curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:9999/v1/traffic/segments?limit=5"' in result.output
