"""The options table is the one source: every option, its setting and its default in
docs/settings.md agree with it, and each reaches the configuration it names."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from resto_fast._options import OPTIONS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def documented() -> dict[str, tuple[str, Any]]:
    """From the docs' table: option -> (setting, default), a row of several split up."""
    found: dict[str, tuple[str, Any]] = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`RESTO_"):
            continue
        settings = re.findall(r"`RESTO_([A-Z_]+)`", cells[0])
        names = re.findall(r"`([a-z_]+)`", cells[1])
        defaults = [ast.literal_eval(d) for d in re.findall(r"`([^`]+)`", cells[2])]
        if len(defaults) == 1:
            defaults *= len(names)
        assert len(settings) == len(names) == len(defaults), line
        for setting, name, default in zip(settings, names, defaults, strict=True):
            found[name] = (setting, default)
    return found


def same_default(documented: Any, actual: Any) -> bool:
    if documented in ((), {}) and actual in ((), {}):  # "none": a list, pairs or a mapping
        return True
    return bool(documented == actual and type(documented) in (type(actual), int))


def test_the_docs_table_is_the_options_table() -> None:
    docs = documented()
    assert sorted(docs) == sorted(option.name for option in OPTIONS)
    for option in OPTIONS:
        setting, default = docs[option.name]
        assert setting == option.setting, option.name
        assert same_default(default, option.default), (option.name, default, option.default)


def test_each_option_lands_on_the_field_it_names(tmp_path: Path) -> None:
    from resto_fast.storage import HybridStorage

    storage = HybridStorage(location=str(tmp_path), retries=3, show_traceback=True, hosts=["m1"])
    config = storage.resto_config
    targets = {"replicator": config.replicator, "queue": config.queue, "storage": config}
    for option in OPTIONS:
        value = getattr(targets[option.target], option.attribute)
        if option.name == "hosts":
            assert value == ("m1",)
        elif option.name == "retries":
            assert value == 3
        elif option.name == "show_traceback":
            assert value is True  # the replicator's log_tracebacks
        else:
            assert same_default(option.default, value), option.name
