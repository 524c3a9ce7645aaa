"""Rendering results: rich for people (progress bars on a terminal, tables), JSON for scripts.

Human output goes to stdout, progress and errors to stderr; ``--json`` prints exactly one JSON
document on stdout (docs/json.md has the schemas).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .errors import AtomicsiteError
from .plan import SKIP, FileAction, Plan
from .publish import PublishEvents, PublishResult

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _jsonable(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def emit_json(value) -> None:
    sys.stdout.write(json.dumps(_jsonable(value), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def error(exc: AtomicsiteError, *, as_json: bool) -> None:
    if as_json:
        emit_json(exc.to_json())
    else:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")


def human_bytes(n: int) -> str:
    size = float(n)  # decimal units, as rich's progress bar shows them
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


class PublishProgress:
    """Progress for publish: a rich bar on a terminal, one plain line per stage otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.live = enabled and err.is_terminal
        self._progress: Progress | None = None
        self._task = None

    def events(self) -> PublishEvents:
        return PublishEvents(on_stage=self.stage, on_plan=self.plan, on_file=self.file if self.live else None)

    def stage(self, name: str) -> None:
        if not self.enabled:
            return
        if name == "transfer" and self.live:
            return
        if name != "transfer" and self._progress:
            self._progress.stop()
            self._progress = None
        err.print(f"[dim]· {name}[/]")

    def plan(self, plan: Plan) -> None:
        if not self.enabled:
            return
        s = plan.summary()
        err.print(
            f"[dim]· plan: {s['files']} files; upload {s['upload']['files']} ({human_bytes(s['upload']['bytes'])}), "
            f"copy {s['copy']['files']}, already there {s['skip']['files']}[/]"
        )
        work = [a for a in plan.actions if a.kind != SKIP]
        if self.live and work:
            self._progress = Progress(
                TextColumn("[bold]transfer"), BarColumn(), DownloadColumn(),
                TimeRemainingColumn(), console=err, transient=True,
            )
            self._task = self._progress.add_task("transfer", total=sum(a.entry.size for a in work) or 1)
            self._progress.start()

    def file(self, action: FileAction) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, action.entry.size or 0)

    def close(self) -> None:
        if self._progress:
            self._progress.stop()
            self._progress = None


def links_findings(result: PublishResult) -> None:
    """The link gate's findings, page → reference: all of them in a dry run, else the warnings."""
    report = result.links
    if report is None or not report.findings:
        return
    shown = report.findings if result.dry_run else report.warnings[:20]
    for f in shown:
        color = "red" if f.level == "error" else "yellow"
        out.print(f"[{color}]{f.level}[/]: {escape(f.page)} → {escape(f.ref)} ({f.kind}; /{escape(f.target)} is not in the build)")
    if len(shown) < len(report.warnings if not result.dry_run else report.findings):
        out.print(f"… and {len(report.warnings) - len(shown)} more warnings (see --dry-run or --json)")
    if result.dry_run and report.refused:
        out.print(f"[red]links: publish would refuse this build[/] ({len(report.errors)} missing file(s) a page loads)")


def publish_result(result: PublishResult) -> None:
    plan = result.plan
    links_findings(result)
    if result.dry_run:
        table = Table(title=f"plan for version {plan.version} (dry run: nothing written)", show_lines=False)
        for col in ("action", "path", "size", "reason"):
            table.add_column(col, overflow="fold")
        for a in plan.actions:
            table.add_row(a.kind, a.entry.path, human_bytes(a.entry.size), a.reason)
        out.print(table)
        if result.ignored:
            out.print(f"ignored (not published): {escape(', '.join(result.ignored))}")
        out.print(f"switch: {plan.switch} ({plan.switch_reason})")
        return
    s = plan.summary()
    out.print(
        f"version [bold]{plan.version}[/]: {s['files']} files, {human_bytes(s['bytes'])}; "
        f"uploaded {s['upload']['files']} ({human_bytes(s['upload']['bytes'])}), copied {s['copy']['files']}, "
        f"already there {s['skip']['files']} in {result.seconds:.1f}s"
    )
    if result.switched:
        out.print(f"[green]live[/]: channel {plan.channel!r} now serves {plan.version}"
                  + (f" (was {plan.pointer.version})" if plan.pointer.version else ""))
    else:
        out.print(f"[yellow]not switched[/]: {plan.switch_reason}")
    _after(result.outcome.reports if result.outcome else [])


def _after(reports) -> None:
    for r in reports:
        out.print(f"  {r.switcher}: {'ok' if r.ok else 'FAILED'} {escape(r.detail)}")


def serve_hint(target: str) -> None:
    if target.startswith("file://"):
        root = target[len("file://"):]
        out.print(f"[dim]serve it: python -m http.server -d {root}/current 8000   (or: atomicsite serve)[/]")


def switch_outcome(outcome) -> None:
    if outcome.switched:
        out.print(f"[green]live[/]: channel {outcome.channel!r} now serves {outcome.version}"
                  + (f" (was {outcome.before})" if outcome.before else "")
                  + (" [bold](pinned)[/]" if outcome.pointer.pinned else ""))
    else:
        out.print(f"channel {outcome.channel!r}: {outcome.note or 'unchanged'} ({outcome.version})")
    _after(outcome.reports)


def status(st) -> None:
    p, m = st.pointer, st.manifest
    out.print(f"[bold]{st.channel}[/] @ {st.target}")
    out.print(f"  version   {p['version']}" + ("  [bold yellow]PINNED[/]" if p["pinned"] else ""))
    out.print(f"  previous  {p['previous'] or '-'}")
    out.print(f"  switched  {p['updated']} by {p['by']} ({p['action']})" + (f": {p['message']}" if p.get("message") else ""))
    out.print(f"  files     {m['files']} ({human_bytes(m['bytes'])}), built {m['created']}")
    if m.get("source", {}).get("commit"):
        out.print(f"  source    {m['source']['commit'][:12]} {m['source'].get('ref') or ''}")
    if st.current_link:
        out.print(f"  current → {st.current_link}")
    if st.switchers:
        for r in st.switchers.get("reports", []):
            out.print(f"  {r['switcher']}: {'ok' if r['ok'] else 'FAILED'} {escape(r['detail'])} ({st.switchers['at']})")


def versions(rows) -> None:
    table = Table(title="versions (newest first)")
    table.add_column("version", no_wrap=True)
    for col in ("created", "files", "size", "commit", "channels", "message"):
        table.add_column(col, overflow="fold")
    for r in rows:
        chans = ", ".join(c + (" (pinned)" if c in r.pinned_by else "") for c in r.channels)
        table.add_row(r.version, r.created, str(r.files), human_bytes(r.bytes), (r.commit or "")[:12], chans,
                      escape(r.message or ""))
    out.print(table)


def history(entries, channel: str) -> None:
    table = Table(title=f"history of {channel!r} (newest first)")
    for col in ("at", "action", "version", "from", "by", "message"):
        table.add_column(col, overflow="fold")
    for h in entries:
        table.add_row(h["at"], h["action"], h["version"], h["previous"] or "-", h["by"], escape(h.get("message") or ""))
    out.print(table)


def diff(d) -> None:
    out.print(f"{d.a} → {d.b}: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed")
    for sign, paths, color in (("+", d.added, "green"), ("-", d.removed, "red"), ("~", d.changed, "yellow")):
        for p in paths:
            out.print(f"[{color}]{sign} {escape(p)}[/]")


def verify(result) -> None:
    out.print(f"version {result.version}: {result.files} files re-hashed, "
              f"{len(result.missing)} missing, {len(result.mismatched)} changed, {len(result.extra)} extra")
    for p in result.extra:
        out.print(f"  [dim]extra (not in manifest): {escape(p)}[/]")


def prune(result) -> None:
    plan = result.plan
    verb = "would delete" if result.dry_run else "deleted"
    table = Table(title="prune" + (" (dry run: nothing deleted)" if result.dry_run else ""))
    table.add_column("version")
    table.add_column("decision", overflow="fold")
    for v in plan.delete + plan.orphans + plan.keep + plan.young_orphans:
        table.add_row(v, plan.reasons.get(v, ""))
    out.print(table)
    n = len(plan.delete) + len(plan.orphans)
    out.print(f"{verb} {n} version(s), {plan.objects if result.dry_run else result.deleted_objects} object(s)")


def channels(pointers) -> None:
    table = Table(title="channels")
    for col in ("channel", "version", "pinned", "updated", "by"):
        table.add_column(col)
    for p in pointers:
        table.add_row(p.channel, p.version, "yes" if p.pinned else "", p.updated, p.by)
    out.print(table)


