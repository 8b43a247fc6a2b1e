"""``scim-gateway users import``."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shlex
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from domain.policy import policy_for
from gateway.cli.output import UserError, cli_actor, say
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store, work_on
from gateway.import_lines import start_worker
from gateway.importer import Importer, ImportOptions, ImportReport, ImportStopped, Rejection
from gateway.progress import ProgressBar
from gateway.settings import Settings
from gateway.tenancy import Principal


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            count += chunk.count(b"\n")
    return count


class _Rejects:
    """The rejects file, created at the first rejection: one JSON line per refused input line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO | None = None

    def write(self, rejection: Rejection) -> None:
        if self.file is None:
            self.file = self.path.open("wb")
        self.file.write(orjson.dumps({"line": rejection.line, "error": rejection.error,
                                      "input": rejection.text.decode("utf-8", "replace").rstrip("\n")}) + b"\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _resume_hint(args: argparse.Namespace) -> str:
    command = ["scim-gateway", "users", "import", args.file, "--tenant", args.tenant, "--skip-existing"]
    if args.continue_on_error:
        command.append("--continue-on-error")
    return " ".join(shlex.quote(part) for part in command)


def _summary(report: ImportReport, args: argparse.Namespace, rejects: _Rejects) -> str:
    text = f"imported {report.imported:,} user(s) into tenant {args.tenant}"
    if report.skipped:
        text += f", skipped {report.skipped:,} existing"
    if report.rejected:
        text += f", rejected {report.rejected:,} (see {rejects.path})"
    return text


def _done(report: ImportReport) -> str:
    return f" (lines 1-{report.settled_through:,} are done)" if report.settled_through else ""


# From this size on (about 8,000 users) worker processes pay for their start (a fork, or a
# fresh interpreter's imports where one is spawned). Preparing a line costs a worker about 2.5
# times what writing it costs this process, so on 2 cores two workers beat one (about 1.1x)
# and one beat none (1.2-1.5x) (docs/benchmarks.md, "third sitting"). Not measured on more
# cores: two there too.
# The load average is not asked: it counts the import's own previous run.
_WORKER_FROM_BYTES = 2 << 20
_DEFAULT_WORKERS = 2


def _jobs(args: argparse.Namespace, path: Path) -> int:
    if args.jobs is not None:
        return args.jobs
    if (os.cpu_count() or 1) < 2 or path.stat().st_size < _WORKER_FROM_BYTES:
        return 0
    return _DEFAULT_WORKERS


def _start_workers(count: int, settings: Settings) -> ProcessPoolExecutor | None:
    """Worker processes that prepare batches, started now (before asyncio runs) so that their
    start-up overlaps ours, and all of them at once (a pool starts processes at a first task)."""
    if count == 0:
        return None
    pool = ProcessPoolExecutor(count, mp_context=_worker_context(), initializer=start_worker, initargs=(settings,))
    for _ in range(count):
        pool.submit(os.getpid)
    return pool


def _worker_context() -> multiprocessing.context.BaseContext:
    """Forked while this process has no other thread (the command's case: no event loop runs
    yet), so a worker inherits the imports a spawned one pays about 0.35 s of CPU for, each;
    the import ran 1.1x faster (docs/benchmarks.md, "third sitting"). With other threads (a
    test that runs the command in a thread) a fork could copy a lock some thread holds:
    spawned then."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"cannot read {path}: no such file")
    rejects = _Rejects(Path(args.rejects) if args.rejects else path.with_name(path.name + ".rejects.jsonl"))
    if not rejects.path.parent.is_dir():
        raise UserError(f"cannot write {rejects.path}: directory {rejects.path.parent} does not exist")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.jobs is not None and args.jobs < 0:
        raise UserError("--jobs must be 0 or more")
    options = ImportOptions(batch_size=args.batch_size, skip_existing=args.skip_existing,
                            continue_on_error=args.continue_on_error)
    report = ImportReport()
    bar = ProgressBar("importing users")
    total = _count_lines(path) if bar.enabled else None
    workers = _start_workers(_jobs(args, path), settings)

    async def run() -> None:
        async with open_store(settings) as session:
            row = await work_on(session.tenancy, args.tenant)
            actor = cli_actor()
            principal = Principal(row.tenant_id, row.name, uuid.UUID(int=0), actor["owner"],
                                  actor["token_description"], frozenset({"admin"}),
                                  policy_for(row.profile, row.settings))  # type: ignore[arg-type]
            importer = Importer(session.store, principal, str(path), options, rejects.write, report, workers)
            with path.open("rb") as lines:  # noqa: ASYNC230 - read a batch at a time between awaits
                await importer.run(lines, lambda line: bar.update(line, total))

    try:
        asyncio.run(run())
    except ImportStopped as stopped:
        bar.close()
        say(f"scim-gateway: {path}: {stopped}")
        say(f"{_summary(report, args, rejects)}{_done(report)}; fix line "
            f"{stopped.rejection.line} (or add --continue-on-error) and resume with: {_resume_hint(args)}")
        return 1
    except KeyboardInterrupt:
        bar.close()
        say(f"interrupted: {_summary(report, args, rejects)}{_done(report)}; "
            f"resume with: {_resume_hint(args)}")
        return 130
    except BrokenProcessPool:
        bar.close()
        say(f"scim-gateway: a worker process preparing the lines stopped (killed, or out of memory?): "
            f"{_summary(report, args, rejects)}{_done(report)}; resume with: {_resume_hint(args)}")
        return 1
    finally:
        rejects.close()
        if workers is not None:
            workers.shutdown(cancel_futures=True)
    bar.update(report.settled_through, report.settled_through)
    bar.close()
    say(_summary(report, args, rejects))
    return 0


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    """Erase a person for good by destroying their data key (docs/privacy.md); never SCIM."""
    from gateway.erasure import erase_user
    from gateway.replay import Replay
    from projections.audit import AuditProjection
    from projections.runner import CatchUpRunner

    async def run() -> dict[str, Any]:
        async with open_store(settings) as session:
            tenant = await work_on(session.tenancy, args.tenant)
            user_id = await Replay(session.store).resolve_user(tenant.tenant_id, args.user)
            erased = await erase_user(session.store, tenant.tenant_id, user_id, actor=cli_actor(),
                                      reason=args.reason, ticket=args.ticket, confirm_active=args.confirm_active)
            # Scrub the audit trail now rather than when the server's projector next runs.
            await CatchUpRunner(session.store, "audit", AuditProjection()).catch_up()
            return erased.as_dict()

    result = asyncio.run(run())
    if result["alreadyErased"]:
        say(f"user {result['id']} was already erased at {result['erasedAt']} by {result['erasedBy']}; nothing done")
    else:
        say(f"erased user {result['id']}: its key is destroyed, its values read [erased]")
    print(orjson.dumps(result).decode(), flush=True)
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    users = commands.add_parser("users", help="users").add_subparsers(
        dest="users_command", required=True, metavar="ACTION")
    uimport = users.add_parser("import", parents=[parents.common],
                               help="import existing (e.g. credential-login) users from JSON lines")
    uimport.add_argument("file", help="one SCIM User per line")
    uimport.add_argument("--tenant", required=True)
    uimport.add_argument("--skip-existing", action="store_true",
                         help="skip users whose userName exists (how to resume an import)")
    uimport.add_argument("--continue-on-error", action="store_true",
                         help="write refused lines to the rejects file and go on")
    uimport.add_argument("--rejects", metavar="FILE", help="where refused lines go (default FILE.rejects.jsonl)")
    uimport.add_argument("--batch-size", type=int, default=1000, help="users per transaction (default 1000)")
    uimport.add_argument("--jobs", type=int, metavar="N",
                         help="processes preparing batches while this one writes (default: 2 for a file "
                              "of 2 MiB or more on 2 cores or more, else 0: this process prepares them)")
    uimport.set_defaults(run=cmd_import)
    erase = users.add_parser("erase", parents=[parents.common],
                             help="erase a person for good (crypto-shredding); never done through SCIM")
    erase.add_argument("user", help="id, userName or externalId")
    erase.add_argument("--tenant", required=True)
    erase.add_argument("--reason", required=True, help="why (kept in the audit trail, with the actor)")
    erase.add_argument("--ticket", help="the request's ticket id")
    erase.add_argument("--confirm-active", action="store_true", help="erase even though the user is active")
    erase.set_defaults(run=cmd_erase)
