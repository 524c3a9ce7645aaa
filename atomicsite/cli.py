"""The ``atomicsite`` command: parse, call one API function, render. No logic lives here.

Errors are caught in exactly one place (:meth:`Invocation.run`) and mapped to the exit codes in
:mod:`atomicsite.errors`.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup

try:
    from typer._click import exceptions as click  # recent typer vendors its own click: catch its exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click

import atomicsite

from . import report
from .config import Settings, load_settings, parse_duration, with_cloudfront_flags
from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, AtomicsiteError, UsageError
from .interrupt import PublishState, install_sigterm_handler, interrupted


class _Group(TyperGroup):
    """The root command: click's own parse errors ("no such option") become our one-line usage error,
    as JSON when ``--json`` is among the arguments, with the documented usage exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "atomicsite"
            report.error(UsageError(exc.format_message(), hint=f"See '{where} --help'."), as_json="--json" in argv)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            report.err.print("Aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class _Command(TyperCommand):
    """Arguments shown by their metavar alone (``VERSION``, ``[VERSION]`` when optional), as options are,
    instead of typer's ``{version}`` / ``<str>`` decorations."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "argument":
                word = param.metavar or param.name.upper()
                param._usage_display_name = (lambda w=word, p=param: w if p.required else f"[{w}]")
                param._rich_display_name = (lambda w=word: w)
                param.display_type_rich = (lambda ctx: None)


def _version(value: bool) -> None:
    if value:
        print(f"atomicsite {atomicsite.__version__}")
        raise typer.Exit(0)


app = typer.Typer(
    cls=_Group,
    name="atomicsite",
    help="Atomic static site deploys to your own bucket: publish, promote, pin, rollback.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_version,
                                          help="Print the version and exit.")] = False,
):
    """Atomic static site deploys to your own bucket: publish, promote, pin, rollback."""


channel_app = typer.Typer(name="channel", help="List and delete channels (live, previews).", no_args_is_help=True)
edge_app = typer.Typer(name="edge", help="CDN edge code (CloudFront Functions).", no_args_is_help=True)
app.add_typer(channel_app, name="channel")
app.add_typer(edge_app, name="edge")


def _opt(*names: str, help: str, **kw):
    return typer.Option(*names, help=help, show_default=False, **kw)


# Options every command takes, added to each command's signature by @command.
_COMMON = {
    "target": (Optional[str], _opt("--target", "-t", metavar="URL", help="s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, file:///PATH or a path. "
                                   "Default: $ATOMICSITE_TARGET, then the config file, then ./.atomicsite/site.")),
    "channel": (Optional[str], _opt("--channel", "-c", metavar="NAME", help="Channel to act on (default: live).")),
    "json_output": (bool, typer.Option("--json", help="Print one JSON document instead of human output.")),
    "config": (Optional[str], _opt("--config", metavar="FILE", help="Config file (default: the nearest atomicsite.toml, or pyproject.toml with [tool.atomicsite], here or in a parent directory).")),
    "endpoint_url": (Optional[str], _opt("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, R2, B2, Ceph).")),
    "region": (Optional[str], _opt("--region", metavar="NAME", help="Bucket region (S3).")),
    "profile": (Optional[str], _opt("--profile", metavar="NAME", help="AWS profile name.")),
    "addressing_style": (Optional[str], _opt("--addressing-style", metavar="STYLE", help="S3 addressing: auto, path or virtual.")),
    "project": (Optional[str], _opt("--project", metavar="ID", help="Google Cloud project (GCS).")),
    "concurrency": (Optional[int], _opt("--concurrency", metavar="N", help="Parallel transfers (default 32).", min=1)),
    "allow_unsafe_cas": (Optional[bool], _opt("--allow-unsafe-cas", help="Switch even on a store that ignores conditional writes (lost updates possible).")),
    "cloudfront": (Optional[list[str]], _opt("--cloudfront", metavar="KEY=VALUE", help="KEY=VALUE over the [cloudfront] config table, e.g. distribution_id=E2Q…, wait=true. Repeatable.")),
}


class Invocation:
    """One command run: its settings, its output mode, and the single place errors become exit codes."""

    def __init__(self, name: str, common: dict):
        self.name = name
        self.publish_state = PublishState()  # publish fills it in, so an interrupt can say where it stopped
        self.json = bool(common.pop("json_output"))
        self.config = common.pop("config")
        self.cloudfront = common.pop("cloudfront") or []
        self.flags = common
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(config_file=self.config).with_overrides(**self.flags)
            self._settings = with_cloudfront_flags(settings, self.cloudfront) if self.cloudfront else settings
        return self._settings

    def with_settings(self, **overrides) -> Settings:
        self._settings = self.settings.with_overrides(**overrides)
        return self._settings

    def run(self, fn):
        try:
            return fn()
        except AtomicsiteError as exc:
            report.error(exc, as_json=self.json)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (interrupt.Stopped)
            error = interrupted(self.name, exc, self.publish_state)
            report.error(error, as_json=self.json)
            raise typer.Exit(error.exit_code) from None

    def show(self, value, human) -> None:
        if self.json:
            report.emit_json(value)
        else:
            human(value)


def command(parent: typer.Typer, name: str):
    """Register ``fn(..., inv: Invocation)`` as a command taking the common options too."""

    qualified = f"{parent.info.name} {name}" if parent is not app else name

    def deco(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # this module's annotations are strings
        own = [p.replace(annotation=hints[p.name]) for p in sig.parameters.values() if p.name != "inv"]
        extra = [
            inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None if t is not bool else False,
                              annotation=Annotated[t, opt])
            for k, (t, opt) in _COMMON.items()
        ]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            inv = Invocation(qualified, {k: kwargs.pop(k) for k in _COMMON})
            return inv.run(lambda: fn(*args, inv=inv, **kwargs))

        wrapper.__signature__ = sig.replace(parameters=own + extra)
        parent.command(name, cls=_Command)(wrapper)
        return fn

    return deco


@command(app, "publish")
def publish_cmd(
    build_dir: Annotated[Path, typer.Argument(metavar="DIR", help="The build folder to publish (e.g. ./dist).", show_default=False)],
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Upload and commit, but do not switch the channel.")] = False,
    message: Annotated[Optional[str], _opt("--message", "-m", metavar="TEXT", help="Note recorded in the manifest and the channel history.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan, with a reason per file; write nothing.")] = False,
    verify_url: Annotated[Optional[list[str]], _opt("--verify-url", metavar="URL", help="After switching, fetch URL until it serves the new version; switch back if not in time. Repeatable.")] = None,
    layout: Annotated[Optional[str], _opt("--layout", metavar="LAYOUT", help="How the version is stored (docs/layout.md); default: what the channel's live version uses, else objects on a local target and tree on a bucket.")] = None,
    compress: Annotated[Optional[str], _opt("--compress", metavar="ENCODINGS", help="Store precompressed variants: br, gzip or br,gzip ('none': off); default: the compress setting, else none (docs/config.md).")] = None,
    allow_older: Annotated[bool, typer.Option("--allow-older", help="Switch even if DIR was built from an older commit than the channel serves (refused by default, exit 3).")] = False,
    expires: Annotated[Optional[str], _opt("--expires", metavar="AGE", help="Preview channels: expire this long from now (7d, 12h); prune then removes the channel.")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="Prove every stored object again by listing, even if the version is committed, and store again what is missing or damaged.")] = False,
    *,
    inv: Invocation,
):
    """Publish DIR as a new immutable version and switch the channel to it."""
    ttl = parse_duration(expires, where="--expires") if expires is not None else None
    if verify_url:
        inv.with_settings(verify_urls=tuple(verify_url))
    if layout:
        inv.with_settings(layout=layout)
    if compress is not None:
        inv.with_settings(compress=compress)
    progress = report.PublishProgress(enabled=not inv.json, state=inv.publish_state)
    try:
        result = atomicsite.publish(build_dir, channel=inv.settings.channel, promote=not no_promote, message=message,
                                    dry_run=dry_run, settings=inv.settings, events=progress.events(),
                                    allow_older=allow_older, expires=ttl, repair=repair)
    finally:
        progress.close()
    inv.show(result, report.publish_result)
    if not inv.json and not dry_run and result.switched:
        report.serve_hint(result.target, result.plan.channel)


@command(app, "promote")
def promote_cmd(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="Version id, unique prefix, 'previous', 'current' or 'live' (docs/cli.md).", show_default=False)],
    message: Annotated[Optional[str], _opt("--message", "-m", metavar="TEXT", help="Why; kept in the history.")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="Replace a corrupt channel pointer.")] = False,
    verify_url: Annotated[Optional[list[str]], _opt("--verify-url", metavar="URL", help="Health-check URL after the switch (repeatable).")] = None,
    allow_older: Annotated[bool, typer.Option("--allow-older", help="Switch even if VERSION was built from an older commit than the channel serves (refused by default, exit 3).")] = False,
    *,
    inv: Invocation,
):
    """Point the channel at VERSION (re-applies CDN switchers if it already does)."""
    outcome = atomicsite.promote(version, settings=inv.settings, message=message, repair=repair,
                                 verify_urls=tuple(verify_url) if verify_url else None, allow_older=allow_older)
    inv.show(outcome, report.switch_outcome)


@command(app, "pin")
def pin_cmd(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="Version id, unique prefix, 'previous', 'current' or 'live' (docs/cli.md).", show_default=False)],
    message: Annotated[Optional[str], _opt("--message", "-m", metavar="TEXT", help="Why; kept in the history.")] = None,
    *,
    inv: Invocation,
):
    """Switch to VERSION and lock the channel: later publishes commit but do not go live until unpin."""
    inv.show(atomicsite.pin(version, settings=inv.settings, message=message), report.switch_outcome)


@command(app, "unpin")
def unpin_cmd(
    message: Annotated[Optional[str], _opt("--message", "-m", metavar="TEXT", help="Why; kept in the history.")] = None,
    *,
    inv: Invocation,
):
    """Unlock the channel; it keeps its version until the next publish or promote."""
    inv.show(atomicsite.unpin(settings=inv.settings, message=message), report.switch_outcome)


@command(app, "rollback")
def rollback_cmd(
    to: Annotated[Optional[str], _opt("--to", metavar="VERSION", help="Version to roll back to (default: the previous live one).")] = None,
    message: Annotated[Optional[str], _opt("--message", "-m", metavar="TEXT", help="Why; kept in the history.")] = None,
    *,
    inv: Invocation,
):
    """Switch the channel back to the version it served before (or --to VERSION)."""
    inv.show(atomicsite.rollback(settings=inv.settings, to=to, message=message), report.switch_outcome)


@command(app, "status")
def status_cmd(*, inv: Invocation):
    """What the channel serves now, who switched it, and what the CDN switchers last did."""
    inv.show(atomicsite.status(settings=inv.settings), report.status)


@command(app, "versions")
def versions_cmd(*, inv: Invocation):
    """Every committed version, newest first, with the channels pointing at it."""
    inv.show(atomicsite.versions(settings=inv.settings), report.versions)


@command(app, "history")
def history_cmd(*, inv: Invocation):
    """The channel's recent switches (the last 20)."""
    entries = atomicsite.history(settings=inv.settings)
    inv.show(entries, lambda e: report.history(e, inv.settings.channel))


@command(app, "diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(metavar="A", help="From version (id, prefix, previous, current, live).", show_default=False)],
    b: Annotated[str, typer.Argument(metavar="B", help="To version.", show_default=False)],
    *,
    inv: Invocation,
):
    """Paths added, removed and changed between versions A and B."""
    inv.show(atomicsite.diff(a, b, settings=inv.settings), report.diff)


@command(app, "verify")
def verify_cmd(
    version: Annotated[Optional[str], typer.Argument(metavar="VERSION", help="Version (default: the one the channel serves).", show_default=False)] = None,
    *,
    inv: Invocation,
):
    """Download a version's objects and re-hash them against its manifest."""
    result = atomicsite.verify(version, settings=inv.settings, raise_on_failure=False)
    inv.show(result, report.verify)
    if not result.ok:
        first = (result.missing or result.mismatched)[0]
        raise_exit(atomicsite.errors.IntegrityError(
            f"version {result.version} is damaged (first: {first}).",
            hint="Publish its build again with --repair to store what is missing or changed."), inv)


def raise_exit(exc: AtomicsiteError, inv: Invocation):
    if not inv.json:
        report.error(exc, as_json=False)
    raise typer.Exit(exc.exit_code)


@command(app, "prune")
def prune_cmd(
    keep: Annotated[Optional[int], _opt("--keep", metavar="N", help="Keep the N newest versions (default 10).", min=1)] = None,
    older_than: Annotated[Optional[str], _opt("--older-than", metavar="AGE", help="Only delete versions older than this (30d, 12h).")] = None,
    grace: Annotated[Optional[str], _opt("--grace", metavar="AGE", help="Leave partial uploads younger than this (default 24h).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Allow deleting more versions than the safety limit.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted; delete nothing.")] = False,
    *,
    inv: Invocation,
):
    """Remove expired preview channels, then delete old versions (never one a channel points at) and stale partial uploads."""
    result = atomicsite.prune(
        settings=inv.settings, keep=keep, force=force, dry_run=dry_run,
        older_than=parse_duration(older_than, where="--older-than") if older_than else None,
        grace=parse_duration(grace, where="--grace") if grace else None,
    )
    inv.show(result, report.prune)


@command(channel_app, "list")
def channel_list_cmd(*, inv: Invocation):
    """Every channel and the version it serves."""
    inv.show(atomicsite.list_channels(settings=inv.settings), report.channels)


@command(channel_app, "delete")
def channel_delete_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Channel to delete (not 'live').", show_default=False)],
    *,
    inv: Invocation,
):
    """Delete a channel's pointer (its versions stay until prune)."""
    inv.show(atomicsite.delete_channel(name, settings=inv.settings), report.channel_deleted)


@command(app, "serve")
def serve_cmd(
    host: Annotated[Optional[str], _opt("--host", metavar="ADDRESS", help="Address to listen on (default 127.0.0.1; [serve] host).", envvar="ATOMICSITE_HOST")] = None,
    port: Annotated[Optional[int], _opt("--port", metavar="PORT", help="Port (default 8000; [serve] port).", min=0, max=65535, envvar="ATOMICSITE_PORT")] = None,
    pointer_ttl: Annotated[Optional[str], _opt("--pointer-ttl", metavar="SECONDS", help="How long a pointer is cached (seconds, or 2s, 1m): a switch reaches every replica within it (default 1).")] = None,
    spa: Annotated[Optional[str], _opt("--spa", metavar="PATH", help="Serve this page (e.g. /index.html) for unknown HTML paths; it must exist in the served version.")] = None,
    no_skew_protection: Annotated[bool, typer.Option("--no-skew-protection", help="Always serve live, even to pages loaded from an older version.")] = False,
    workers: Annotated[int, _opt("--workers", metavar="N", help="Worker processes; each follows the pointer on its own.", min=1, envvar="ATOMICSITE_WORKERS")] = 1,
    metrics_port: Annotated[Optional[int], _opt("--metrics-port", metavar="PORT", help="Serve Prometheus metrics on this port (same address as --host).", min=1, max=65535, envvar="ATOMICSITE_METRICS_PORT")] = None,
    forwarded_allow_ips: Annotated[str, _opt("--forwarded-allow-ips", metavar="ADDRESSES", help="Addresses or networks (comma-separated, or *) whose X-Forwarded-For/-Proto are believed (default 127.0.0.1).", envvar="ATOMICSITE_FORWARDED_ALLOW_IPS")] = "127.0.0.1",
    *,
    inv: Invocation,
):
    """Serve the channel's current version over HTTP, following the pointer (granian, N workers)."""
    from .serve import AppRecipe, create_app, run, serve_config

    ttl = parse_duration(pointer_ttl, where="--pointer-ttl") if pointer_ttl is not None else None
    config = serve_config(inv.settings).with_overrides(
        channel=inv.settings.channel, pointer_ttl=ttl, spa_fallback=spa,
        skew_protection=False if no_skew_protection else None)
    router = create_app(inv.settings.target_or_default, config, settings=inv.settings)  # bad settings fail here, once
    try:
        if router.config.spa_fallback:
            atomicsite.query.check_page(router.store, router.config.spa_fallback, channel=router.config.channel,
                                        where="--spa" if spa is not None else "[serve] spa_fallback")
        url = router.store.url
    finally:
        router.close()
    recipe = AppRecipe(create_app, (inv.settings.target_or_default, config), (("settings", inv.settings),))
    if not inv.json:
        report.err.print(f"serving {config.channel!r} of {url} "
                         f"on http://{host or config.host}:{port if port is not None else config.port} "
                         f"({workers} worker{'s' if workers != 1 else ''})")
    run(recipe, host=host, port=port, workers=workers, metrics_port=metrics_port,
        forwarded_allow_ips=forwarded_allow_ips)


@command(edge_app, "cloudfront-function")
def edge_cloudfront_function_cmd(
    deploy: Annotated[bool, typer.Option("--deploy", help="Create or update the function and publish it (needs [cloudfront] kvs_arn).")] = False,
    *,
    inv: Invocation,
):
    """Print (or --deploy) the viewer-request CloudFront Function that serves the version in the edge key."""
    from .cdn import cloudfront_function

    result = cloudfront_function(settings=inv.settings, deploy=deploy)
    if inv.json:
        report.emit_json(result)
    elif deploy:
        report.out.print(result["detail"])
    else:
        print(result["code"], end="")


def main() -> None:
    install_sigterm_handler()
    try:
        app(prog_name="atomicsite")
    except SystemExit as exc:
        if exc.code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            # Interrupted, and the message is out: leave now. Worker threads still finishing a transfer
            # are not waited for (interpreter exit would join them), so SIGTERM means a prompt exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code)
        raise


__all__ = ["app", "main"]
