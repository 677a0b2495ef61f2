"""The snippets `emd deploy` prints are valid Python and shell for every model type, keyed or public."""

from __future__ import annotations

import ast
import shlex

import pytest

from emd_cli.snippets import KEY_VARIABLE, curl, python
from emd_cli.targets.base import Endpoint


@pytest.mark.parametrize("model_type", ["llm", "vlm", "embedding", "rerank", "asr"])
@pytest.mark.parametrize("key", ["emd-secret", None])
def test_snippets_parse_and_never_carry_the_key(model_type: str, key: str | None) -> None:
    ep = Endpoint("m/dev", "local", "http://127.0.0.1:8080/v1", "m/dev", model_type, key)
    code, shell = python(ep), curl(ep)
    ast.parse(code)
    shlex.split(shell.replace("\\\n", " "))
    assert "emd-secret" not in code + shell
    assert (KEY_VARIABLE in code) == (key is not None) == (f"${KEY_VARIABLE}" in shell)
    assert ep.base_url in code and ep.base_url in shell and '"m/dev"' in code
