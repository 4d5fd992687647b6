"""``-o/--output`` and ``--query`` behave as az's (knack's) formatters do: the query before the format,
az's table flattening and its tsv rules, nothing printed for a null result."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import yaml

from remediator.cli import build_parser, main
from remediator.cli.output import (
    OUTPUT_FORMATS,
    TABLE_UNAVAILABLE,
    compile_query,
    emit,
    format_table,
    format_tsv,
    render,
)
from remediator.core.errors import UserInputError
from tests.unit.test_cli import CLUSTERS, EXAMPLES, MGS

ITEMS: list[dict[str, Any]] = [
    {
        "name": "a",
        "id": "/x/a",
        "type": "t",
        "etag": "e",
        "count": 3,
        "ok": True,
        "tags": {"k": 1},
        "n": None,
    },
    {"name": "bbbbb", "id": "/x/b", "count": 12, "ok": False, "tags": [1, 2]},
]


def test_formats_are_azs() -> None:
    assert OUTPUT_FORMATS == ("json", "jsonc", "table", "tsv", "yaml", "none")


def test_json_keeps_the_result_and_its_key_order() -> None:
    text = render({"b": 1, "a": "é"})
    assert text == '{\n  "b": 1,\n  "a": "é"\n}\n'  # non-ASCII kept (ensure_ascii=False), order kept


def test_yaml_is_safe_dump_with_sorted_keys() -> None:
    text = render({"b": 1, "a": [True, None]}, output="yaml")
    assert text == "a:\n- true\n- null\nb: 1\n"
    assert yaml.safe_load(text) == {"a": [True, None], "b": 1}


def test_query_runs_before_formatting() -> None:
    query = compile_query("[?ok].name")
    assert json.loads(render(ITEMS, query=query)) == ["a"]
    assert render(ITEMS, output="tsv", query=query) == "a\n"


def test_null_result_prints_nothing_in_every_format() -> None:
    query = compile_query("[?name=='zz'] | [0]")
    for output in OUTPUT_FORMATS:
        assert render(ITEMS, output=output, query=query) == ""


def test_none_prints_nothing() -> None:
    assert render(ITEMS, output="none") == ""


def test_table_flattens_like_az() -> None:
    """knack _TableOutput: id/type/etag skipped, None and nested values left out, keys capitalised and sorted
    (no query, no layout), numbers right-aligned, tabulate 'simple' layout."""
    assert format_table(ITEMS) == (
        "Count  Name   Ok\n-----  -----  -----\n    3  a      True\n   12  bbbbb  False\n"
    )


def test_table_with_a_query_keeps_the_query_order_and_ignores_the_command_layout() -> None:
    layout_used = []

    def layout(result: Any) -> Any:
        layout_used.append(True)
        return [{"Z": 1}]

    text = render(ITEMS, output="table", query=compile_query("[].{Name: name, C: count}"), table=layout)
    assert text.splitlines()[0].split() == ["Name", "C"]
    assert layout_used == []
    assert render(ITEMS, output="table", table=layout).splitlines()[0] == "Z"
    assert layout_used == [True]


def test_table_of_scalars_and_of_lists() -> None:
    assert format_table(["x", "yy"]).splitlines() == ["Result", "------", "x", "yy"]
    assert format_table([["a", 1], ["b", 22]]).splitlines()[0].split() == ["Column1", "Column2"]


def test_table_without_a_scalar_is_unavailable() -> None:
    with pytest.raises(UserInputError) as info:
        format_table([{"tags": {"a": 1}}])
    assert info.value.message == TABLE_UNAVAILABLE


def test_tsv_like_az() -> None:
    """knack _TsvOutput: values in sorted key order (no query), nested list -> its length, nested object ->
    empty, None -> 'None', booleans inside an object as Python prints them."""
    # sorted keys: count, etag, id, n, name, ok, tags, type
    assert format_tsv(ITEMS) == "3\te\t/x/a\tNone\ta\tTrue\t\tt\n12\t/x/b\tbbbbb\tFalse\t2\n"
    assert format_tsv(True) == "true\n"
    assert format_tsv(["a", "b"]) == "a\nb\n"


def test_tsv_with_a_query_keeps_the_query_order() -> None:
    text = render(ITEMS, output="tsv", query=compile_query("[].{n: name, c: count}"))
    assert text == "a\t3\nbbbbb\t12\n"


def test_jsonc_is_coloured_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    args = build_parser().parse_args(["config", "schema", "-o", "jsonc"])
    plain = io.StringIO()
    emit({"a": 1}, args, stream=plain)
    assert plain.getvalue() == '{\n  "a": 1\n}\n'
    coloured = Terminal()
    emit({"a": 1}, args, stream=coloured)
    assert "\x1b[" in coloured.getvalue() and '"a"' in coloured.getvalue()


def test_an_invalid_query_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["config", "check", str(EXAMPLES / "multi-region.yaml"), "--query", "[?"])
    assert info.value.code == 2
    assert "invalid JMESPath query" in capsys.readouterr().err


def test_an_unknown_output_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["config", "check", str(EXAMPLES / "multi-region.yaml"), "-o", "xml"])
    assert info.value.code == 2


def test_table_unavailable_through_main_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["config", "check", str(EXAMPLES / "multi-region.yaml"), "--query", "storageRegions", "-o", "table"]
    )
    captured = capsys.readouterr()
    assert code == 0 and captured.out.splitlines()[0] == "Result"  # a list of scalars is a table
    code = main(["config", "schema", "--query", "properties", "-o", "table"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.strip() == f"error: --output: {TABLE_UNAVAILABLE}"


@pytest.mark.parametrize("output", OUTPUT_FORMATS)
def test_every_data_command_takes_every_format(output: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explain", "--config", str(EXAMPLES / "multi-region.yaml"), "--cluster", str(CLUSTERS[0])]
    assert main([*args, "--management-groups", str(MGS), "-o", output]) == 0
    out = capsys.readouterr().out
    assert (out == "") is (output == "none")
