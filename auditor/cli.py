"""The `llm-audit` command: a thin typer layer over the library (the only module that knows typer).

Exit codes: 0 ok; 1 policy failed (gate); 2 usage or input error; 3 not evaluable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from auditor import __version__
from auditor.report import Report

app = typer.Typer(
    name="llm-audit",
    help="Offline auditor for LLM API spend: prices every request in your logs and shows what each lever saves.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
pricing_app = typer.Typer(
    help="Inspect the price tables: list, show one model, check consistency.", no_args_is_help=True
)
app.add_typer(pricing_app, name="pricing")

stdout = Console()
stderr = Console(stderr=True, soft_wrap=True)  # file paths and messages are never wrapped mid-word

EXIT_OK, EXIT_POLICY, EXIT_INPUT, EXIT_NOT_EVALUABLE = 0, 1, 2, 3


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def parse_when(value: str | None, option: str) -> datetime | None:
    """--since/--until: a date (2026-10-01) or an ISO timestamp; naive values are UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {value!r} is not a date or ISO timestamp (e.g. 2026-10-01 or 2026-10-01T12:00:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")


def version_callback(value: bool) -> None:
    if value:
        stdout.print(f"llm-audit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """llm-audit reads request logs you already have; nothing leaves the machine."""


def write_output(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    stderr.print(f"wrote {output}", highlight=False)


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Log files, folders (recursive) or globs; .jsonl/.ndjson/.json/.parquet, optionally .gz or .zst."
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="terminal | json | markdown | html")] = "terminal",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    input_format: Annotated[
        str | None,
        typer.Option("--input-format", help="Force a source format (see `llm-audit formats`) instead of detecting it."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only requests at or after this date/time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Only requests before this date/time (UTC).")] = None,
    sample: Annotated[
        float | None, typer.Option(help="Keep this share of requests (0-1), chosen deterministically by request id.")
    ] = None,
    price_date: Annotated[str | None, typer.Option(help="Reprice every request at this date's prices.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="llm-audit.yaml (default: ./llm-audit.yaml if present).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 2 if any record was skipped.")] = False,
    levers: Annotated[bool, typer.Option(help="Run the cost levers (--no-levers: spend summary only).")] = True,
    width: Annotated[int | None, typer.Option(help="Terminal width for the summary.")] = None,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-on",
            help="Gate: exit 1 when this condition holds, "
            "e.g. 'savings_pct>20', 'unpriced_requests>0', 'finding:LA4' "
            "(repeatable; adds to policy.fail_on in the config).",
        ),
    ] = None,
    min_requests: Annotated[
        int | None, typer.Option(help="Gate: fewer requests than this is not evaluable (exit 3).")
    ] = None,
) -> None:
    """Read request logs, price every request, and report where the money goes and what would save it."""
    from auditor.config import ConfigError, load_config
    from auditor.gate import PolicyError, parse_condition
    from auditor.ingest import FORMATS
    from auditor.pipeline import ScanOptions, scan
    from auditor.prices import PricingError
    from auditor.render import FORMATS as OUTPUT_FORMATS
    from auditor.render import render
    from auditor.spill import SpillError

    if fmt not in OUTPUT_FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    if input_format is not None and input_format not in FORMATS:
        fail(f"--input-format {input_format!r} is unknown; known formats: {', '.join(FORMATS)}")
    if sample is not None and not 0 < sample <= 1:
        fail(f"--sample {sample} must be a share between 0 (exclusive) and 1")
    try:
        cfg = load_config(config)
        for condition in [*(cfg.policy.get("fail_on") or []), *(fail_on or [])]:
            parse_condition(condition)  # a typo in the policy fails before the scan, not after
    except (ConfigError, PolicyError) as exc:
        fail(str(exc))
    options = ScanOptions(
        paths=paths,
        input_format=input_format,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        sample_rate=sample,
        price_date=parse_day(price_date, "--price-date"),
        config=cfg,
        run_levers=levers,
    )
    try:
        with progress_reporter(paths) as progress:
            result = scan(options, progress=progress)
    except (PricingError, ConfigError, SpillError) as exc:
        fail(str(exc))
    report = result.report
    if not report.inputs.get("files") and report.inputs.get("records_skipped"):
        for skip in report.inputs.get("skipped", [])[:10]:
            stderr.print(f"  {skip['file']}: {skip['reason']}", highlight=False)
        fail("no readable log files in the given paths")
    if fmt == "terminal" and output is None:
        from auditor.render.terminal import render_terminal

        console = Console(width=width) if width else stdout
        render_terminal(report, console)
    else:
        write_output(render(report, fmt, width=width or 110), output)
    skipped = report.inputs.get("records_skipped", 0)
    if strict and skipped:
        fail(f"{skipped} record(s) skipped and --strict is on (see inputs.skipped)")
    conditions = [*(cfg.policy.get("fail_on") or []), *(fail_on or [])]
    floor = min_requests if min_requests is not None else int(cfg.policy.get("min_requests") or 0)
    if conditions or floor:
        apply_gate(report, conditions, floor)


def apply_gate(report: Report, conditions: list[str], min_requests: int) -> None:
    from auditor.gate import PolicyError, evaluate

    try:
        outcome = evaluate(report, conditions, min_requests=min_requests)
    except PolicyError as exc:
        fail(str(exc))
    for reason in outcome.reasons:
        stderr.print(f"gate: {reason}", highlight=False)
    if outcome.status == "not_evaluable":
        fail("policy not evaluable on this data", EXIT_NOT_EVALUABLE)
    if outcome.status == "fail":
        fail(f"policy failed ({len(outcome.reasons)} condition(s))", EXIT_POLICY)
    stderr.print("gate: policy passed", style="green")


class progress_reporter:
    """A progress bar on stderr, by bytes read, only when stderr is a terminal."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.progress: object | None = None

    def __enter__(self) -> Callable[[int], None] | None:
        if not stderr.is_terminal:
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        from auditor.ingest import expand_paths

        files, _ = expand_paths(self.paths)
        total = sum(f.stat().st_size for f in files if f.is_file())
        progress = Progress(
            "reading logs", BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=stderr, transient=True
        )
        progress.start()
        task = progress.add_task("read", total=total or None)
        self.progress = progress

        def advance(n: int) -> None:
            progress.advance(task, n)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()  # type: ignore[attr-defined]


@app.command("render")
def render_command(
    report_file: Annotated[Path, typer.Argument(help="A report saved with `scan --format json`.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="terminal | json | markdown | html")] = "terminal",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
) -> None:
    """Re-render a saved JSON report in another format."""
    from auditor.render import FORMATS as OUTPUT_FORMATS
    from auditor.render import render

    if fmt not in OUTPUT_FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    report = load_report(report_file)
    if fmt == "terminal" and output is None:
        from auditor.render.terminal import render_terminal

        render_terminal(report, stdout)
    else:
        write_output(render(report, fmt), output)


def load_report(path: Path) -> Report:
    try:
        return Report.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except (ValueError, TypeError, KeyError) as exc:
        fail(f"{path}: not an llm-audit JSON report ({exc})")


@app.command("diff")
def diff_command(
    base: Annotated[Path, typer.Argument(help="The earlier JSON report.")],
    head: Annotated[Path, typer.Argument(help="The later JSON report.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="terminal | json")] = "terminal",
) -> None:
    """Compare two saved reports: spend, savings and findings that appeared or went away."""
    import json

    from auditor.diff import diff_reports

    if fmt not in ("terminal", "json"):
        fail(f"--format {fmt!r} is not one of terminal, json")
    changes = diff_reports(load_report(base), load_report(head))
    if fmt == "json":
        sys.stdout.write(json.dumps(changes, indent=2) + "\n")
        return
    from auditor.render.diff import render_diff

    render_diff(changes, stdout)


@app.command("export-eval")
def export_eval_command(
    paths: Annotated[list[str], typer.Argument(help="Log files, folders or globs (as for scan).")],
    feature: Annotated[str, typer.Option(help="The feature whose requests to sample.")],
    to: Annotated[str, typer.Option("--to", help="The candidate model to replay them on.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Batch input file to write (the originals go next to it as NAME.originals.jsonl)."
        ),
    ] = Path("eval.jsonl"),
    sample_size: Annotated[int, typer.Option(help="Requests to sample, stratified by input length.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the sample (same seed, same sample).")] = 0,
    full_text: Annotated[
        bool,
        typer.Option(
            help="Keep prompts unmasked. Without it secrets and e-mails are masked, so the replay is not byte-exact."
        ),
    ] = False,
    input_format: Annotated[str | None, typer.Option("--input-format", help="Force a source format.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="llm-audit.yaml.")] = None,
) -> None:
    """Write a sample of one feature's real requests as a batch file for a cheaper model, with the originals
    side by side, to compare quality at batch prices before switching."""
    from auditor.config import ConfigError, load_config
    from auditor.export_eval import EvalExportError, build_eval, write_eval
    from auditor.pipeline import ScanOptions, scan
    from auditor.prices import PriceBook, PricingError

    try:
        cfg = load_config(config)
        options = ScanOptions(paths=paths, input_format=input_format, config=cfg, run_levers=False, keep_texts=True)
        result = scan(options)
        prices = PriceBook.load(cfg.pricing or None)
        export = build_eval(
            result.frame,
            feature=feature,
            to_model=to,
            prices=prices,
            sample_size=sample_size,
            seed=seed,
            full_text=full_text,
        )
    except (ConfigError, PricingError, EvalExportError) as exc:
        fail(str(exc))
    batch_file, originals = write_eval(output, export.lines, export.originals)
    stderr.print(
        f"wrote {len(export.lines)} requests of feature {feature!r} ({export.eligible} eligible) as a "
        f"{export.batch_format} batch for {to}: {batch_file}\n      originals side by side: {originals}",
        highlight=False,
    )
    for reason, n in sorted(export.skipped.items()):
        stderr.print(f"      skipped {n}: {reason}", highlight=False)
    if not full_text:
        stderr.print(
            "      prompts are masked (secrets, e-mails); use --full-text for a byte-exact replay", style="dim"
        )


@app.command("formats")
def formats_command() -> None:
    """List the log formats llm-audit reads (detected automatically, or forced with --input-format)."""
    from auditor.ingest import FORMATS

    table = Table(box=None)
    table.add_column("name", style="bold")
    table.add_column("what it reads")
    for name, description in FORMATS.items():
        table.add_row(name, description)
    stdout.print(table)


def _rule_docs() -> dict[str, str]:
    from auditor.package_data import data_files

    return {p.name[:-3]: p.read_text(encoding="utf-8") for p in data_files("auditor.rules_docs", ".md")}


def _rule_doc(code: str) -> str | None:
    return _rule_docs().get(code.upper())


def _rule_codes() -> list[str]:
    return sorted(_rule_docs())


@app.command("explain")
def explain_command(code: Annotated[str, typer.Argument(help="A finding code, e.g. LA101.")]) -> None:
    """Explain a finding code: what it detects, why it costs money, how the estimate is computed, what to do."""
    text = _rule_doc(code)
    if text is None:
        fail(f"no finding code {code!r}; known codes: {', '.join(_rule_codes())}")
    stdout.print(Markdown(text))


@pricing_app.command("list")
def pricing_list(
    on: Annotated[str | None, typer.Option(help="Prices in force on this date (default: today).")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
) -> None:
    """Every model in the price tables with its prices per 1M tokens."""
    from auditor.prices import PriceBook
    from auditor.pricing_report import list_models

    day = parse_day(on, "--on") or date.today()
    rows = [r for r in list_models(PriceBook.load(), day) if provider is None or r["provider"] == provider]
    table = Table(box=None)
    for column in ("model_id", "provider", "family", "input", "cache read", "output", "effective from"):
        table.add_column(column, justify="right" if column in ("input", "cache read", "output") else "left")
    for r in rows:
        table.add_row(
            str(r["model_id"]),
            str(r["provider"]),
            str(r["family"]),
            _mtok(r.get("input_mtok")),
            _mtok(r.get("cache_read_mtok")),
            _mtok(r.get("output_mtok")),
            str(r.get("effective_from")),
        )
    stdout.print(table)
    stdout.print(f"{len(rows)} models · USD per 1M tokens · prices on {day.isoformat()}", style="dim")


def _mtok(value: object) -> str:
    return "—" if value is None else f"${float(str(value)):,.4g}"


@pricing_app.command("show")
def pricing_show(
    model: Annotated[str, typer.Argument(help="A model name as logged (aliases and snapshots resolve).")],
    on: Annotated[str | None, typer.Option(help="Prices in force on this date (default: today).")] = None,
) -> None:
    """One model's resolved prices, tiers, multipliers, caching rules, aliases and cheaper candidates."""
    import json

    from auditor.prices import PriceBook, PricingError
    from auditor.pricing_report import show_model

    try:
        details = show_model(PriceBook.load(), model, parse_day(on, "--on") or date.today())
    except (PricingError, KeyError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    stdout.print_json(json.dumps(details, default=str))


@pricing_app.command("check")
def pricing_check() -> None:
    """Check the price tables for consistency (exit 1 on problems)."""
    from auditor.prices import PriceBook, PricingError
    from auditor.pricing_report import check_tables

    try:
        problems = check_tables(PriceBook.load())
    except PricingError as exc:
        fail(str(exc))
    for problem in problems:
        stdout.print(f"[yellow]•[/] {problem}", highlight=False)
    if problems:
        fail(f"{len(problems)} problem(s) in the price tables", EXIT_POLICY)
    stdout.print("price tables OK", style="green")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
