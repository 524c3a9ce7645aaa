"""Rendering results: rich for people (progress bars on a terminal, tables), JSON for scripts.

Human output goes to stdout, progress and errors to stderr; ``--json`` prints exactly one JSON
document on stdout (docs/json.md has the schemas).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .errors import AtomicsiteError
from .interrupt import PublishState
from .plan import ALREADY_LIVE, NO_PROMOTE, PINNED, SKIP, SWITCH, FileAction, Plan
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


def plural(n: int, word: str) -> str:
    """``plural(1, "file")`` → ``1 file``; ``plural(2, "file")`` → ``2 files``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _parse(iso: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")) if iso else None
    except ValueError:
        return None


def local_time(iso: str | None) -> str:
    """``2026-11-29T20:14:03.120Z`` → ``2026-11-29 21:14`` in the local time zone (--json keeps the full value)."""
    t = _parse(iso)
    return t.astimezone().strftime("%Y-%m-%d %H:%M") if t else (iso or "-")


def age(iso: str | None, now: datetime | None = None) -> str:
    """How long ago: ``just now``, ``5m ago``, ``3h ago``, ``2d ago``; older than 30 days, the local date."""
    t = _parse(iso)
    if t is None:
        return iso or "-"
    seconds = ((now or datetime.now(timezone.utc)) - t).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("m", 60), ("h", 3600), ("d", 86400)):
        if seconds < size * (60 if unit == "m" else 24 if unit == "h" else 30):
            return f"{int(seconds // size)}{unit} ago"
    return t.astimezone().strftime("%Y-%m-%d")


def _table(title: str) -> Table:
    # no outer frame: tables fit 80 columns with full version ids on one line
    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", collapse_padding=True)


def human_bytes(n: int) -> str:
    size = float(n)  # decimal units, as rich's progress bar shows them
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


class PublishProgress:
    """Progress for publish: a rich bar on a terminal, one plain line per stage otherwise."""

    def __init__(self, enabled: bool = True, state: PublishState | None = None):
        self.enabled = enabled
        self.state = state if state is not None else PublishState()
        self.live = enabled and err.is_terminal
        self._progress: Progress | None = None
        self._task = None

    def events(self) -> PublishEvents:
        return PublishEvents(on_stage=self.stage, on_plan=self.plan, on_file=self.file if self.live else None)

    def stage(self, name: str) -> None:
        self.state.stage = name
        if not self.enabled:
            return
        if name == "transfer" and self.live:
            return
        if name != "transfer" and self._progress:
            self._progress.stop()
            self._progress = None
        err.print(f"[dim]· {name}[/]")

    def plan(self, plan: Plan) -> None:
        self.state.channel, self.state.version, self.state.before = plan.channel, plan.version, plan.pointer.version
        if not self.enabled:
            return
        s = plan.summary()
        variants = f" + {plural(s['variants']['files'], 'compressed variant')}" if s["variants"]["files"] else ""
        err.print(
            f"[dim]· plan: {plural(s['files'], 'file')}{variants}; upload {s['upload']['files']} ({human_bytes(s['upload']['bytes'])}), "
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


_WOULD = {SWITCH: "would switch", ALREADY_LIVE: "no switch needed", NO_PROMOTE: "would not switch",
          PINNED: "would not switch"}


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
        table = _table(f"plan for version {plan.version} (dry run: nothing written)")
        table.add_column("action", no_wrap=True)
        table.add_column("path", overflow="fold")
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("reason", overflow="fold")
        for a in plan.actions:
            table.add_row(a.kind, escape(a.entry.path), human_bytes(a.entry.size), escape(a.reason))
        out.print(table)
        if result.ignored:
            out.print(f"ignored (not published): {escape(', '.join(result.ignored))}")
        out.print(f"{_WOULD.get(plan.switch, plan.switch)}: {escape(plan.switch_reason)}")
        if result.order:
            older_guard(result.order, dry_run=True)
        return
    s = plan.summary()
    out.print(
        f"version [bold]{plan.version}[/]: {plural(s['files'], 'file')}, {human_bytes(s['bytes'])}; "
        f"uploaded {s['upload']['files']} ({human_bytes(s['upload']['bytes'])}), copied {s['copy']['files']}, "
        f"already there {s['skip']['files']} in {result.seconds:.1f}s"
    )
    if result.switched:
        out.print(switch_line(plan.channel, plan.version, plan.pointer.version))
        if result.outcome.note:
            out.print(f"  [yellow]note[/]: {escape(result.outcome.note)}")
    elif result.outcome and result.outcome.note:
        out.print(f"channel {plan.channel!r} {escape(result.outcome.note)}")
    elif plan.switch == ALREADY_LIVE:
        out.print(f"channel {plan.channel!r} already serves {plan.version}: nothing to switch")
    else:
        out.print(f"[yellow]not switched[/]: {escape(plan.switch_reason)}")
    if result.url:
        out.print(f"  preview   [bold]{escape(result.url)}[/]")
    if result.expires:
        out.print(f"  expires   {expiry_text(result.expires)}")
    if result.website:
        out.print(f"  s3 website redirects: {plural(len(result.website['objects']), 'object')}")
        for line in result.website["unsupported"]:
            out.print(f"  [yellow]not expressible on S3 website hosting[/]: {escape(line)}")
    _after(result.outcome.reports if result.outcome else [])


def older_guard(order, *, dry_run: bool) -> None:
    """The older-commit guard's verdict, as a dry run shows it."""
    rule = f"{order.rule}: {order.detail}"
    if order.older and not order.allowed_by_flag:
        out.print(f"[bold red]older-commit guard would refuse the switch[/] ({escape(rule)}); --allow-older overrides")
    elif order.older:
        out.print(f"[yellow]older-commit guard: older build, allowed by --allow-older[/] ({escape(rule)})")
    elif order.decision == "unknown":
        out.print(f"older-commit guard could not judge ({escape(rule)}): the switch would not be refused")
    else:
        out.print(f"older-commit guard: ok, {order.decision} ({escape(rule)})")


def switch_line(channel: str, version: str, before: str | None, pinned: bool = False) -> str:
    """``pr-12: now serves 3f9a… (was 7c1e…)``: the channel that moved, in green, never a stock 'live'."""
    return (f"[green]{escape(channel)}[/]: now serves {version}" + (f" (was {before})" if before else "")
            + (" [bold](pinned)[/]" if pinned else ""))


def _after(reports) -> None:
    for r in reports:
        out.print(f"  {r.switcher}: {'ok' if r.ok else 'FAILED'} {escape(r.detail)}")
        for note in (r.data or {}).get("edge_notes", ()):  # rules the CloudFront Function handles differently
            out.print(f"    [yellow]at the edge[/]: {escape(note)}")


def expiry_text(expires: str | None, pinned: bool = False) -> str:
    """``2026-12-06 21:14 (in 6d)``, ``expired 2h ago``, or ``-`` for a channel that never expires."""
    t = _parse(expires)
    if t is None:
        return "-"
    if pinned:
        return f"{local_time(expires)} (pinned: kept)"
    seconds = (t - datetime.now(timezone.utc)).total_seconds()
    if seconds <= 0:
        return f"expired {age(expires)} (prune removes it)"
    left = next(f"{int(seconds // size)}{unit}" for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
                if seconds >= size or unit == "s")
    return f"{local_time(expires)} (in {left})"


def serve_hint(target: str, channel: str = "live") -> None:
    if not target.startswith("file://"):
        return
    if channel == "live":  # `current` follows the live channel only
        root = target[len("file://"):]
        out.print(f"[dim]serve it: python -m http.server -d {root}/current 8000   (or: atomicsite serve)[/]")
    else:
        out.print(f"[dim]serve it: atomicsite serve --channel {channel}[/]")


def switch_outcome(outcome) -> None:
    if outcome.switched:
        out.print(switch_line(outcome.channel, outcome.version, outcome.before, outcome.pointer.pinned))
        if outcome.note:
            out.print(f"  [yellow]note[/]: {escape(outcome.note)}")
    else:
        note = outcome.note or "unchanged"
        if outcome.version not in note:
            note += f"; serves {outcome.version}"
        out.print(f"channel {outcome.channel!r}: {escape(note)}")
    _after(outcome.reports)


def status(st) -> None:
    p, m = st.pointer, st.manifest
    out.print(f"[bold]{st.channel}[/] @ {st.target}")
    out.print(f"  version   {p['version']}" + ("  [bold yellow]PINNED[/]" if p["pinned"] else ""))
    out.print(f"  previous  {p['previous'] or '-'}")
    if p.get("expires"):
        out.print(f"  expires   {expiry_text(p['expires'], p['pinned'])}")
    out.print(f"  switched  {local_time(p['updated'])} ({age(p['updated'])}) by {escape(p['by'])} ({p['action']})"
              + (f": {escape(p['message'])}" if p.get("message") else ""))
    out.print(f"  files     {plural(m['files'], 'file')} ({human_bytes(m['bytes'])}), built {local_time(m['created'])}")
    if m.get("source", {}).get("commit"):
        committed = m["source"].get("committed_at")
        out.print(f"  source    {m['source']['commit'][:12]} {m['source'].get('ref') or ''}"
                  + (f", committed {escape(str(committed))}" if committed else ""))
    if st.current_link:
        out.print(f"  current → {st.current_link}")
    if st.switchers:
        for r in st.switchers.get("reports", []):
            out.print(f"  {r['switcher']}: {'ok' if r['ok'] else 'FAILED'} {escape(r['detail'])} ({st.switchers['at']})")


def grid(title: str, headers: list[str], rows: list[tuple], *, flexible: set[int] = frozenset(),
         right: set[int] = frozenset(), width: int | None = None) -> list[str]:
    """Plain columns that fit ``width`` (the terminal; 80 when not one) without ever wrapping a line:
    fixed columns (ids, times, counts) keep their full text; the ``flexible`` ones (channels, who,
    message) share what is left and are cut with an ellipsis. Returns the lines, title first."""
    width = width or out.width
    rows = [tuple("" if c is None else str(c) for c in r) for r in rows]
    natural = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    widths = list(natural)
    spare = width - sum(w for i, w in enumerate(natural) if i not in flexible) - 2 * (len(headers) - 1)
    flex = sorted(flexible, key=lambda i: natural[i])  # narrow ones first: they may need less than a share
    for n, i in enumerate(flex):
        share = max(len(headers[i]), spare // (len(flex) - n))
        widths[i] = min(natural[i], share)
        spare -= widths[i]

    def line(cells) -> str:
        parts = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            cell = cell if len(cell) <= w else cell[:max(0, w - 1)] + "…"
            parts.append(cell.rjust(w) if i in right else cell.ljust(w))
        return "  ".join(parts).rstrip()

    return [title, line(headers), *(line(r) for r in rows)]


def _print_grid(lines: list[str]) -> None:
    title, header, *rows = lines
    out.print(f"[bold]{escape(title)}[/]")
    out.print(f"[dim]{escape(header)}[/]")
    for row in rows:
        out.print(row, markup=False)


def _corrupt_channels(corrupt: dict[str, str]) -> None:
    for name, why in sorted(corrupt.items()):
        err.print(f"[yellow]warning:[/] channel {name!r}: {escape(why)}")


def versions(rows) -> None:
    cells = [(r.version, local_time(r.created), r.files, human_bytes(r.bytes),
              ", ".join(c + ("*" if c in r.pinned_by else "") for c in r.channels), r.message or "") for r in rows]
    _print_grid(grid("versions, newest first (local times; --json has full values)",
                     ["version", "created", "files", "size", "channels", "message"], cells,
                     flexible={4, 5}, right={2, 3}))
    if any(r.pinned_by for r in rows):
        out.print("[dim]* pinned[/]")
    _corrupt_channels(getattr(rows, "corrupt_channels", {}))


def history(entries, channel: str) -> None:
    cells = [(age(h["at"]), h["action"], h["version"], h["previous"] or "-", h["by"], h.get("message") or "")
             for h in entries]
    _print_grid(grid(f"history of {channel!r}, newest first (--json has full times)",
                     ["when", "action", "version", "from", "by", "message"], cells, flexible={4, 5}))


def diff(d) -> None:
    out.print(f"{d.a} → {d.b}: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed")
    for sign, paths, color in (("+", d.added, "green"), ("-", d.removed, "red"), ("~", d.changed, "yellow")):
        for p in paths:
            out.print(f"[{color}]{sign} {escape(p)}[/]")


def verify(result) -> None:
    variants = f" and {plural(result.variants, 'compressed variant')}" if result.variants else ""
    out.print(f"version {result.version}: {plural(result.files, 'file')}{variants} re-hashed, "
              f"{len(result.missing)} missing, {len(result.mismatched)} changed, {len(result.extra)} extra")
    for label, paths, style in (("missing", result.missing, "red"), ("changed", result.mismatched, "red"),
                                ("extra (not in manifest)", result.extra, "dim")):
        for path in paths:
            out.print(f"  [{style}]{label}: {escape(path)}[/]")


def prune(result) -> None:
    plan = result.plan
    channels = result.expired_channels
    if channels and (channels.removed or channels.kept):
        verb = "would remove" if result.dry_run else "removed"
        for name, version in channels.removed.items():
            out.print(f"expired channel {escape(name)!r} (served {version}): {verb}")
            if name in channels.cdn:
                out.print(f"  {escape(channels.cdn[name])}")
        for name, why in channels.kept.items():
            out.print(f"[yellow]expired channel {escape(name)!r}[/]: {escape(why)}")
    cells = []
    for v in plan.delete + plan.orphans + plan.keep + plan.young_orphans:
        if v in result.spared:
            decision = result.spared[v]
        elif v in result.deleted:
            decision = f"deleted {plural(result.deleted[v], 'object')} ({plan.reasons.get(v, '')})"
        else:
            decision = plan.reasons.get(v, "")
        cells.append((v, decision))
    _print_grid(grid("prune" + (" (dry run: nothing deleted)" if result.dry_run else ""), ["version", "decision"],
                     cells, flexible={1}))
    if result.dry_run:
        n = len(plan.delete) + len(plan.orphans)
        out.print(f"would delete {plural(n, 'version')}, {plural(plan.objects, 'object')}")
        if plan.over_limit:
            out.print("[yellow]that is more than prune.max_delete: the real run needs --force[/]")
        if plan.pool.unused:
            out.print(f"would collect {plural(len(plan.pool.unused), 'unused pool object')} "
                      f"({human_bytes(plan.pool.bytes)})")
    else:
        spared = f"; spared {len(result.spared)} that came into use meanwhile" if result.spared else ""
        out.print(f"deleted {plural(len(result.deleted), 'version')}, {plural(result.deleted_objects, 'object')}{spared}")
        if result.pool_deleted:
            out.print(f"  of which {plural(result.pool_deleted, 'unused pool object')} (objects layout)")
        for line in result.cdn:
            out.print(f"  {escape(line)}")
    if plan.pool.held or getattr(result, "pool_note", ""):
        out.print(f"[yellow]pool[/]: {escape(plan.pool.held or result.pool_note)}")


def channels(pointers) -> None:
    cells = [(p.channel, "CORRUPT", "", "", "", "") if hasattr(p, "corrupt") else
             (p.channel, p.version, "yes" if p.pinned else "", age(p.updated), expiry_text(p.expires, p.pinned), p.by)
             for p in pointers]
    _print_grid(grid("channels", ["channel", "version", "pinned", "updated", "expires", "by"], cells,
                     flexible={0, 4, 5}))
    _corrupt_channels({p.channel: f"{p.corrupt} {p.hint}" for p in pointers if hasattr(p, "corrupt")})


def channel_deleted(d) -> None:
    out.print(f"deleted channel {d.channel!r} (it served {d.version})")
    if d.note:
        out.print(f"  [yellow]note[/]: {escape(d.note)}" if not d.conditional else f"  note: {escape(d.note)}")
