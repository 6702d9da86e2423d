"""End-to-end: the `llm-audit` command on real files, as a user runs it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.report import SCHEMA_VERSION, Report

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = ROOT / "sample_logs"
FIXTURES = ROOT / "tests" / "fixtures" / "ingest"  # copies of ../shared/real-data files (README there)

runner = CliRunner()

OPENAI_LINE = {
    "timestamp": "2026-10-01T12:00:00Z",
    "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Capital of Peru?"}]},
    "response": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1790856000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Lima."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
    },
    "metadata": {"feature": "qa", "tenant": "acme"},
}


def scan_json(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["scan", *args, "--format", "json"])
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, data


def test_scan_prices_one_openai_request_exactly(tmp_path: Path) -> None:
    log = tmp_path / "one.jsonl"
    log.write_text(json.dumps(OPENAI_LINE) + "\n")
    code, report = scan_json(str(log), "--no-levers")
    assert code == 0
    assert report["schema_version"] == SCHEMA_VERSION
    # gpt-4o: 1000 input x $2.50/M + 100 output x $10/M = 0.0025 + 0.001
    assert report["totals"]["cost_usd"] == pytest.approx(0.0035, abs=1e-12)
    assert report["totals"]["requests"] == 1
    assert report["breakdowns"]["feature"][0]["key"] == "qa"
    assert report["breakdowns"]["tenant"][0]["key"] == "acme"
    assert report["pricing"]["unpriced_models"] == []


def test_unknown_model_is_unpriced_not_zero(tmp_path: Path) -> None:
    line = json.loads(json.dumps(OPENAI_LINE))
    line["request"]["model"] = line["response"]["model"] = "acme-secret-model-9"
    log = tmp_path / "unknown.jsonl"
    log.write_text(json.dumps(line) + "\n" + json.dumps(OPENAI_LINE) + "\n")
    code, report = scan_json(str(log), "--no-levers")
    assert code == 0
    assert report["totals"]["unpriced_requests"] == 1
    assert report["totals"]["cost_complete"] is False
    assert report["totals"]["cost_usd"] == pytest.approx(0.0035, abs=1e-12)  # only the priced request
    unpriced = report["pricing"]["unpriced_models"]
    assert [(u["model"], u["requests"], u["input_tokens"], u["output_tokens"]) for u in unpriced] == [
        ("acme-secret-model-9", 1, 1000, 100)
    ]


def test_missing_path_is_an_input_error_without_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output
    assert "Traceback" not in result.output


def test_strict_turns_a_skip_into_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "mixed.jsonl"
    log.write_text(json.dumps(OPENAI_LINE) + "\n{not json\n")
    relaxed = runner.invoke(app, ["scan", str(log), "--format", "json", "--no-levers"])
    assert relaxed.exit_code == 0
    report = json.loads(relaxed.stdout)
    assert report["inputs"]["records_skipped"] == 1
    assert report["inputs"]["skipped"][0]["line"] == 2
    strict = runner.invoke(app, ["scan", str(log), "--format", "json", "--no-levers", "--strict"])
    assert strict.exit_code == 2


def test_same_report_whatever_the_file_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    second = json.loads(json.dumps(OPENAI_LINE))
    second["timestamp"] = "2026-10-02T08:00:00Z"
    second["metadata"]["feature"] = "summarize"
    a.write_text(json.dumps(OPENAI_LINE) + "\n")
    with gzip.open(b, "wt") as handle:
        handle.write(json.dumps(second) + "\n")
    _, first = scan_json(str(a), str(b))
    _, swapped = scan_json(str(b), str(a))
    assert first == swapped
    assert first["totals"]["requests"] == 2


def test_render_round_trip_and_formats(tmp_path: Path) -> None:
    log = tmp_path / "one.jsonl"
    log.write_text(json.dumps(OPENAI_LINE) + "\n")
    saved = tmp_path / "audit.json"
    assert runner.invoke(app, ["scan", str(log), "-f", "json", "-o", str(saved)]).exit_code == 0
    report = Report.from_json(saved.read_text())
    assert report.totals["requests"] == 1
    md = runner.invoke(app, ["render", str(saved), "--format", "markdown"])
    assert md.exit_code == 0
    assert "## llm-audit report" in md.stdout and "$0.0035" in md.stdout
    html_file = tmp_path / "audit.html"
    assert runner.invoke(app, ["render", str(saved), "-f", "html", "-o", str(html_file)]).exit_code == 0
    assert "<title>LLM spend audit" in html_file.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 99}')
    result = runner.invoke(app, ["render", str(bad)])
    assert result.exit_code == 2 and "schema_version" in result.output


def test_explain_known_and_unknown_codes() -> None:
    known = runner.invoke(app, ["explain", "LA101"])
    assert known.exit_code == 0 and "LA101" in known.stdout
    unknown = runner.invoke(app, ["explain", "LA999"])
    assert unknown.exit_code == 2 and "LA101" in unknown.output


def test_formats_lists_every_source_format() -> None:
    result = runner.invoke(app, ["formats"])
    assert result.exit_code == 0
    for name in ("canonical", "envelope", "openai_batch", "anthropic_batch", "litellm"):
        assert name in result.stdout


def test_sample_logs_scan_end_to_end() -> None:
    code, report = scan_json(str(SAMPLE_LOGS))
    assert code == 0
    totals = report["totals"]
    assert totals["requests"] > 1000
    assert report["inputs"]["records_skipped"] == 0
    # every model in the samples is priced, the fine-tuned one at OpenAI's fine-tuned rates
    assert report["pricing"]["unpriced_models"] == []
    assert totals["cost_complete"] is True
    assert set(report["inputs"]["formats"]) >= {"envelope", "openai_batch", "litellm_spendlogs"}
    plan = report["plan"]
    steps_total = sum(step["savings_usd"] for step in plan["steps"])
    assert steps_total == pytest.approx(plan["savings_usd"], abs=1e-9)
    assert 0 < plan["savings_usd"] < plan["current_cost_usd"]
    terminal = runner.invoke(app, ["scan", str(SAMPLE_LOGS), "--width", "120"])
    assert terminal.exit_code == 0
    assert "Savings plan" in terminal.stdout and "By feature" in terminal.stdout


def test_real_litellm_spend_log_recomputes_to_logged_cost(tmp_path: Path) -> None:
    row = json.loads((FIXTURES / "spend_logs_payload.abridged.json").read_text())
    log = tmp_path / "spend.jsonl"
    log.write_text(json.dumps(row) + "\n")
    code, report = scan_json(str(log), "--no-levers")
    assert code == 0
    # gpt-4o: 10 x $2.50/M + 20 x $10/M = 0.000025 + 0.0002 = 0.000225, as LiteLLM logged
    assert report["totals"]["cost_usd"] == pytest.approx(0.000225, abs=1e-12)
    assert report["totals"]["logged_cost_usd"] == pytest.approx(0.000225, abs=1e-12)


def test_diff_and_gate(tmp_path: Path) -> None:
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_text(json.dumps(OPENAI_LINE) + "\n")
    large.write_text((json.dumps(OPENAI_LINE) + "\n") * 3)
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    for log, out in ((small, base), (large, head)):
        assert runner.invoke(app, ["scan", str(log), "-f", "json", "-o", str(out), "--no-levers"]).exit_code == 0
    result = runner.invoke(app, ["diff", str(base), str(head), "--format", "json"])
    assert result.exit_code == 0
    changes = json.loads(result.stdout)
    assert changes["totals"]["requests"] == {"base": 1, "head": 3, "delta": 2.0, "delta_pct": 200.0}
    assert changes["totals"]["cost_usd"]["delta"] == pytest.approx(0.007)  # two more requests at $0.0035
    # gate: 3 requests at $0.0035 = $0.0105 > $0.01 fails (exit 1); a floor of 10 requests is not evaluable (3)
    gate = runner.invoke(app, ["scan", str(large), "--no-levers", "-f", "json", "--fail-on", "cost_usd>0.01"])
    assert gate.exit_code == 1 and "cost_usd>0.01" in gate.output
    assert (
        runner.invoke(app, ["scan", str(large), "--no-levers", "-f", "json", "--fail-on", "cost_usd>1"]).exit_code == 0
    )
    floor = runner.invoke(app, ["scan", str(large), "--no-levers", "-f", "json", "--min-requests", "10"])
    assert floor.exit_code == 3
    typo = runner.invoke(app, ["scan", str(large), "--fail-on", "cost is high"])
    assert typo.exit_code == 2 and "METRIC OP NUMBER" in typo.output


def _lines_on_days(tmp_path: Path, days: int) -> Path:
    log = tmp_path / "days.jsonl"
    lines = []
    for day in range(1, days + 1):
        line = json.loads(json.dumps(OPENAI_LINE))
        line["timestamp"] = f"2026-10-{day:02d}T12:00:00Z"
        line["response"]["id"] = f"chatcmpl-{day}"
        lines.append(json.dumps(line))
    log.write_text("\n".join(lines) + "\n")
    return log


def test_since_until_keep_the_half_open_window(tmp_path: Path) -> None:
    log = _lines_on_days(tmp_path, 10)
    _, report = scan_json(str(log), "--no-levers", "--since", "2026-10-03", "--until", "2026-10-06")
    # Oct 3, 4, 5 at noon: [since, until) keeps three requests
    assert report["totals"]["requests"] == 3
    assert [row["key"] for row in report["breakdowns"]["day"]] == ["2026-10-03", "2026-10-04", "2026-10-05"]
    bad = runner.invoke(app, ["scan", str(log), "--since", "last tuesday"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_sample_is_deterministic_by_request_id(tmp_path: Path) -> None:
    import hashlib

    log = _lines_on_days(tmp_path, 28)
    _, first = scan_json(str(log), "--no-levers", "--sample", "0.5")
    _, again = scan_json(str(log), "--no-levers", "--sample", "0.5")
    assert first == again
    # independent route: the same blake2b bucket rule over the request ids written above
    expected = sum(
        int.from_bytes(hashlib.blake2b(f"chatcmpl-{d}".encode(), digest_size=8).digest(), "big") / 2**64 < 0.5
        for d in range(1, 29)
    )
    assert first["totals"]["requests"] == expected
    assert 0 < expected < 28


def test_export_eval_command_writes_a_batch_file(tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    result = runner.invoke(
        app,
        ["export-eval", str(SAMPLE_LOGS), "--feature", "ticket_classifier", "--to", "gpt-4o-mini",
         "-o", str(out), "--sample-size", "60"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    originals = [json.loads(line) for line in (tmp_path / "eval.originals.jsonl").read_text().splitlines()]
    assert len(lines) == len(originals) == 60
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert {line["body"]["model"] for line in lines} == {"gpt-4o-mini"}
    assert [line["custom_id"] for line in lines] == [o["custom_id"] for o in originals]
    unknown = runner.invoke(app, ["export-eval", str(SAMPLE_LOGS), "--feature", "ticket_classifier",
                                  "--to", "gpt-99-ultra", "-o", str(out)])  # fmt: skip
    assert unknown.exit_code == 2 and "gpt-99-ultra" in unknown.output


def test_lever_option_typo_fails_before_the_scan(tmp_path: Path) -> None:
    config = tmp_path / "llm-audit.yaml"
    config.write_text("levers:\n  retries:\n    retry_window: 5\n")  # the option is retry_window_seconds
    # the log path does not exist either: the config error must come first, naming the file and the key
    result = runner.invoke(app, ["scan", str(tmp_path / "never-read.jsonl"), "-c", str(config)])
    assert result.exit_code == 2
    assert "llm-audit.yaml: levers.retries: unknown option(s) retry_window" in result.output
    assert "never-read.jsonl" not in result.output
