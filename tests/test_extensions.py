"""Our LSP extensions: the plugins' names match lsp/extensions.py, and payloads are checked at
the edge with clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lsp import extensions
from lsp.extensions import ActionArguments, InvalidPayload, PartialAcceptParams

ROOT = Path(__file__).resolve().parents[1]
NAMES = {
    name: value
    for name, value in vars(extensions).items()
    if name.isupper() and isinstance(value, str) and not name.startswith("KIND_")
}


def test_the_vscode_plugin_mirrors_every_name():
    source = (ROOT / "editors/vscode/src/protocol.ts").read_text()
    found = dict(re.findall(r'export const (\w+) = "([^"]*)";', source))
    assert found == NAMES


def test_the_neovim_plugin_mirrors_every_name():
    source = (ROOT / "editors/nvim/lua/iquest/protocol.lua").read_text()
    found = dict(re.findall(r'^\s*(\w+) = "([^"]*)",', source, re.MULTILINE))
    assert found == NAMES


def test_no_plugin_spells_a_name_outside_its_protocol_module():
    plugins = [
        *(ROOT / "editors/vscode/src").glob("*.ts"),
        *(ROOT / "editors/nvim/lua/iquest").glob("*.lua"),
    ]
    for path in plugins:
        if path.stem == "protocol":
            continue
        text = path.read_text()
        for value in NAMES.values():
            if value == extensions.CAPABILITY:
                continue
            assert f'"{value}"' not in text, f"{path.name} spells {value}"


def test_action_arguments_are_validated_with_a_clear_message():
    parsed = ActionArguments.parse(
        {
            "uri": "file:///a.py",
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}},
        }
    )
    assert parsed.range is not None and parsed.range.to_lsp().end.line == 2
    with pytest.raises(InvalidPayload, match="uri"):
        ActionArguments.parse({"range": None})
    with pytest.raises(InvalidPayload, match=r"range\.start\.line"):
        ActionArguments.parse(
            {
                "uri": "file:///a.py",
                "range": {
                    "start": {"line": -1, "character": 0},
                    "end": {"line": 0, "character": 0},
                },
            }
        )
    with pytest.raises(InvalidPayload):
        ActionArguments.parse("file:///a.py")


def test_payloads_keep_the_wire_names():
    assert PartialAcceptParams.parse({"acceptedLength": 3}).accepted_length == 3
    assert PartialAcceptParams(accepted_length=2).to_json() == {"uri": None, "acceptedLength": 2}


def test_payloads_arrive_as_pygls_hands_them_over():
    """pygls turns the params of a method it does not know into nested namedtuples."""
    from pygls.protocol import _dict_to_object

    params = _dict_to_object({"uri": "file:///a.py", "acceptedLength": 4})
    assert PartialAcceptParams.parse(params).accepted_length == 4
    nested = _dict_to_object(
        {
            "uri": "file:///a.py",
            "range": {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 2}},
        }
    )
    assert (
        ActionArguments.parse(nested).range
        == ActionArguments.parse(
            {
                "uri": "file:///a.py",
                "range": {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 2}},
            }
        ).range
    )
