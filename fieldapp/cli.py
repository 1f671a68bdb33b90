"""The `fieldapp` command: init, serve, users, tls, sync, doctor, open, translations."""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

import click

from fieldapp import accounts, config, encryption, i18n, logs, tls
from fieldapp.domain.roles import ADMIN, ROLES
from fieldapp.i18n import cli_gettext as _
from fieldapp.storage import audit, migrations, users
from fieldapp.storage import db as storage_db

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("fieldapp.cli")


class _LoggedGroup(click.Group):
    """The command group, noting in the log file how each command ended (never its arguments,
    which can hold a name)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as e:
            log.warning("%s stopped: %s", ctx.command_path, type(e).__name__)
            raise
        except Exception:
            log.exception("%s failed", ctx.command_path)
            raise


def _app(ctx: click.Context):
    from fieldapp import create_app

    path = config.instance_path(ctx.obj["instance"])
    if not (path / config.CONFIG_FILE).exists():
        raise click.ClickException(
            _("No instance at %(path)s. Run `fieldapp init` first.", path=str(path)))
    app = create_app(instance=path)
    if not ctx.obj.get("logging"):
        ctx.obj["logging"] = logs.setup(app.config, path,
                                        "server" if ctx.command.name == "serve" else "commands")
        ctx.find_root().call_on_close(logs.close)
        log.info("%s (fieldapp %s)", ctx.command_path, _version())
    _unlock(app.config["DATABASE"])
    return app


def _version() -> str:
    from fieldapp.diagnostics import version

    return version()


def _encryption_error(e: encryption.EncryptionError) -> click.ClickException:
    return click.ClickException(e.message())


def _current_passphrase(path: str) -> str:
    """The passphrase of an encrypted database: from the environment (a service), else asked."""
    try:
        passphrase = encryption.from_environment()
    except encryption.EncryptionError as e:
        raise _encryption_error(e) from e
    if passphrase is None:
        if not sys.stdin.isatty():
            raise _encryption_error(encryption.EncryptionError("no_passphrase", path))
        passphrase = click.prompt(_("Passphrase of the database"), hide_input=True)
    return passphrase


def _unlock(path: str, passphrase: str | None = None) -> None:
    """Unlock an encrypted database's key for this process, once; a plain one needs nothing."""
    if not encryption.needs_passphrase(path):
        return
    try:
        encryption.unlock(path, passphrase if passphrase is not None else _current_passphrase(path))
    except encryption.EncryptionError as e:
        raise _encryption_error(e) from e


def _new_passphrase(from_stdin: bool) -> str:
    """A new passphrase: a line of standard input, or typed twice."""
    if from_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
    else:
        passphrase = click.prompt(_("New passphrase for the database"), hide_input=True)
        if click.prompt(_("The same passphrase again"), hide_input=True) != passphrase:
            raise _encryption_error(encryption.EncryptionError("passphrase_mismatch"))
    try:
        encryption.check_new(passphrase)
    except encryption.EncryptionError as e:
        raise _encryption_error(e) from e
    return passphrase


def _ensure_tls(app) -> tls.TLSFiles:
    try:
        return tls.ensure(app.instance_path, label=app.config["POST"])
    except tls.TLSError as e:
        raise click.ClickException(_(
            "The local certificate authority is incomplete: %(path)s is missing. Restore it from a "
            "backup, or delete the folder %(folder)s to make a new one (every phone must then "
            "install it again).", path=str(e.path), folder=str(e.path.parent))) from e


def _open_db(ctx: click.Context):
    """The app and its database, upgraded if this fieldapp is newer (a copy of the database is
    kept first), refused if a newer fieldapp upgraded it."""
    from fieldapp.storage import copy

    app = _app(ctx)
    db = storage_db.connect(app.config["DATABASE"])
    kept = []
    try:
        migrations.apply(db, before_upgrade=lambda d: kept.append(copy.pre_upgrade_copy(d)))
    except migrations.NewerDatabase as e:
        db.close()
        raise click.ClickException(_(
            "This database was upgraded by a newer version of fieldapp (it knows %(names)s). "
            "Install that version or a newer one: this one cannot open it. Nothing was changed.",
            names=", ".join(e.unknown))) from e
    if kept:
        click.echo(_("Database upgraded to %(version)s. Its copy from before the upgrade is kept "
                     "at %(path)s.", version=migrations.schema_version(db), path=str(kept[0])),
                   err=True)
    return app, db


@click.group(cls=_LoggedGroup, help=_("fieldapp: offline-first field data collection."))
@click.option("--instance", envvar="FIELDAPP_INSTANCE", default=None, metavar="DIR",
              help=_("Instance folder (configuration and database). Default: ./instance"))
@click.pass_context
def main(ctx, instance):
    ctx.ensure_object(dict)
    ctx.obj["instance"] = instance


@main.command(help=_("Create the instance: configuration, secret key, database, first admin."))
@click.option("--post", default=None,
              help=_("Code of this post. Default: POST-1; for a central server, CENTRAL (its own "
                     "accounts' post, which no device may have)."))
@click.option("--central", is_flag=True, help=_("Set up a central server instead of a post."))
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help=_("Username of the first administrator."))
@click.option("--password-stdin", is_flag=True,
              help=_("Read the administrator's password from standard input."))
@click.option("--encrypt", is_flag=True,
              help=_("Encrypt the database with a passphrase (asked twice), which every start then "
                     "needs. An existing plain database is converted."))
@click.option("--passphrase-stdin", is_flag=True,
              help=_("With --encrypt: read the passphrase from standard input (before the "
                     "administrator's password, if --password-stdin)."))
@click.pass_context
def init(ctx, post, central, admin_name, password_stdin, encrypt, passphrase_stdin):
    path = config.instance_path(ctx.obj["instance"])
    existed = (path / config.CONFIG_FILE).exists()
    post = (post or ("CENTRAL" if central else "POST-1")).strip().upper()
    if accounts.rules.check_post("officer", post):
        raise click.BadParameter(accounts.message("invalid_post"), param_hint="--post")
    if encrypt:
        _init_encrypted(ctx, path, post, central, passphrase_stdin)
    else:
        config.write_new(path, post=post, mode="central" if central else "field")
    app, db = _open_db(ctx)
    click.echo(_("Instance: %(path)s", path=str(path)) + (
        " " + _("(already set up: configuration kept)") if existed else ""))
    if users.count(db) == 0:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else \
            accounts.generate_password()
        try:
            accounts.create(db, username=admin_name, password=password, role=ADMIN,
                            post=app.config["POST"], actor=audit.CLI)
        except accounts.AccountError as e:
            raise click.ClickException(e.message()) from e
        click.echo(_("Administrator account: %(name)s", name=admin_name))
        if not password_stdin:
            click.echo(_("Password (shown only once, write it down): %(password)s",
                         password=password))
    else:
        click.echo(_("Accounts exist already: no new administrator created."))
    files = _ensure_tls(app)
    click.echo(_("Certificate authority for HTTPS on the post's network: %(path)s",
                 path=str(files.ca_cert)))


def _init_encrypted(ctx, path: Path, post: str, central: bool, passphrase_stdin: bool) -> None:
    """Before `init` opens the database: create it encrypted, or encrypt the plain one there."""
    from fieldapp import create_app

    new_config = not (path / config.CONFIG_FILE).exists()
    database = create_app({"SECRET_KEY": "-"}, instance=path).config["DATABASE"]
    if storage_db.is_encrypted(database):
        _unlock(database, sys.stdin.readline().rstrip("\r\n") if passphrase_stdin else None)
        click.echo(_("The database is encrypted already."))
        return
    passphrase = _new_passphrase(passphrase_stdin)  # asked before anything is written
    config.write_new(path, post=post, mode="central" if central else "field")
    try:
        if Path(database).exists() and Path(database).stat().st_size:
            encryption.encrypt(database, passphrase)
            click.echo(_("The database was encrypted."))
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            encryption.create(database, passphrase)
            click.echo(_("The database is encrypted."))
    except encryption.EncryptionError as e:
        if new_config:
            (path / config.CONFIG_FILE).unlink()
        raise _encryption_error(e) from e
    click.echo(_("Keep the passphrase safe: without it the database cannot be opened, by anyone. "
                 "See docs/security.md."))


@main.command(help=_("Serve the app: with waitress over HTTP, or with cheroot over HTTPS (--https)."))
@click.option("--host", default=None,
              help=_("Address to listen on. Default: from config; with --https, 0.0.0.0 (every "
                     "network of this computer)."))
@click.option("--port", default=None, type=int,
              help=_("Port. Default: from config; with --https, 8443."))
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--https", "use_https", is_flag=True,
              help=_("Serve HTTPS with this instance's certificate, so phones and tablets on the "
                     "post's network can install the app."))
@click.pass_context
def serve(ctx, host, port, threads, use_https):
    from fieldapp import backups
    from fieldapp.backups import jobs as backup_jobs
    from fieldapp.backups import lock

    try:  # held until this process ends: `fieldapp restore` refuses meanwhile
        ctx.obj["serving"] = lock.hold_serving(config.instance_path(ctx.obj["instance"]))
    except lock.Busy:
        raise click.ClickException(backups.message("restoring")) from None
    app, db = _open_db(ctx)  # pending migrations run before the first request
    db.close()
    if backup_jobs.start_schedule(app):
        click.echo(_("Scheduled backups to %(folder)s every %(hours)s hours.",
                     folder=app.config["BACKUP_DIR"], hours=app.config["BACKUP_EVERY_HOURS"]))
    # Unlocked at start-up means encrypted; the file itself is not read again while connections
    # may be open (storage.db.is_encrypted).
    if app.config["MODE"] == "field" and not storage_db.is_unlocked(app.config["DATABASE"]):
        click.echo(_("Warning: the database is not encrypted: a copy of the file reveals every "
                     "record. Stop the server and run `fieldapp encryption enable`."), err=True)
    _tune_collector()
    if use_https:
        _serve_https(app, host or "0.0.0.0", port or tls.DEFAULT_PORT, threads)
        return
    import waitress

    _start_background(app)
    host, port = host or app.config["HOST"], port or app.config["PORT"]
    click.echo(_("fieldapp ready at http://%(host)s:%(port)s/", host=host, port=port))
    waitress.serve(app, host=host, port=port, threads=threads, ident="fieldapp")


def _tune_collector() -> None:
    """Python's cycle collector, set for serving. What start-up made (the app, forms, translations)
    lives as long as the process: frozen, it is not walked again at every full collection. A sync
    batch makes tens of thousands of short-lived dicts and lists, hardly any in cycles: collecting
    the youngest generation every 10,000 new objects rather than every 700 (Python's default)
    takes central's CPU for a first sync down by about a tenth (docs/benchmarks.md)."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _start_background(app) -> None:
    """The serving app's own jobs: automatic sync, and the daily retention purge."""
    from fieldapp import retention
    from sync import jobs

    if jobs.start_auto(app):
        click.echo(_("Automatic sync with central every %(minutes)s minutes.",
                     minutes=app.config["SYNC_INTERVAL"]))
    if retention.start_auto(app):
        click.echo(_("Retention purge every %(hours)s hours.",
                     hours=app.config["PURGE_INTERVAL_HOURS"]))


def _serve_https(app, host: str, port: int, threads: int) -> None:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    files = _ensure_tls(app)  # a new server certificate if this computer's addresses changed
    _start_background(app)
    app.config["SESSION_COOKIE_SECURE"] = True
    server = wsgi.Server((host, port), app, numthreads=threads, server_name="fieldapp")
    server.ssl_adapter = BuiltinSSLAdapter(str(files.cert), str(files.key))
    server.error_log = _cheroot_log  # to the log file (cheroot writes to stderr by itself)
    if host in ("0.0.0.0", ""):
        hosts = [ip for ip in tls.local_addresses()[1] if ipaddress.ip_address(ip).version == 4]
    else:
        hosts = [host]
    urls = [f"https://{f'[{h}]' if ':' in h else h}:{port}/" for h in hosts]
    try:
        server.prepare()  # listen now, so a port in use is an error before "ready"
    except OSError as e:
        raise click.ClickException(_("Cannot listen on %(host)s port %(port)s: %(error)s",
                                     host=host, port=port, error=str(e))) from e
    log.info("serving HTTPS on %s port %s", host, port)
    click.echo(_("fieldapp ready at:"))
    for url in urls:
        click.echo(f"  {url}")
    click.echo(_("Set up phones and tablets: log in as a supervisor or administrator and open "
                 "%(url)s", url=f"{urls[0]}{app.config['BABEL_DEFAULT_LOCALE']}/connect"))
    click.echo(_("Press Ctrl-C to stop."))
    # cheroot serves in a thread and the main thread only waits for Ctrl-C or a termination request.
    # A KeyboardInterrupt raised inside cheroot's loop can land while it holds its selector's lock,
    # and its stop() then waits for that lock forever.
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stopping.set())
    serving = threading.Thread(target=server.serve, name="https", daemon=True)
    serving.start()
    while serving.is_alive() and not stopping.wait(0.5):
        pass
    click.echo(_("Stopping."))
    log.info("stopping")
    server.stop()
    serving.join(server.shutdown_timeout)


def _cheroot_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    logging.getLogger("cheroot").log(level, "%s", msg, exc_info=traceback)


@main.group(help=_("Manage accounts."))
def users_group():
    pass


main.add_command(users_group, "users")


def _find(db, username):
    user = users.by_username(db, username.strip().lower())
    if user is None:
        raise click.ClickException(_("No account named %(name)s.", name=username))
    return user


@users_group.command("list", help=_("List accounts."))
@click.pass_context
def users_list(ctx):
    db = _open_db(ctx)[1]
    for u in users.all_users(db):
        status = _("active") if u["active"] else _("disabled")
        if u["must_change_password"]:
            status += ", " + _("must change password")
        click.echo(f"{u['username']:<24} {u['role']:<11} {u['post'] or '*':<12} {status}")


@users_group.command("add", help=_("Create an account; prints a generated password once."))
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--post", default=None, help=_("Post code; default: this instance's post."))
@click.option("--name", "full_name", default="", help=_("Full name."))
@click.option("--password-stdin", is_flag=True,
              help=_("Read the password from standard input."))
@click.option("--must-change", is_flag=True,
              help=_("The holder must choose a new password at the first login."))
@click.pass_context
def users_add(ctx, username, role, post, full_name, password_stdin, must_change):
    app, db = _open_db(ctx)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else accounts.generate_password()
    if post is None and role != "central":
        post = app.config["POST"]
    try:
        accounts.create(db, username=username, password=password, role=role, post=post,
                        full_name=full_name, must_change=must_change,
                        actor=audit.CLI)
    except accounts.AccountError as e:
        raise click.ClickException(e.message()) from e
    click.echo(_("Account created: %(name)s", name=username.strip().lower()))
    if not password_stdin:
        click.echo(_("Password (shown only once, write it down): %(password)s", password=password))


def _set_active(ctx, username, active):
    db = _open_db(ctx)[1]
    user = _find(db, username)
    accounts.set_active(db, user["id"], active, actor=audit.CLI)
    click.echo(_("Account enabled: %(name)s", name=user["username"]) if active
               else _("Account disabled: %(name)s", name=user["username"]))


@users_group.command("disable", help=_("Disable an account; its sessions end at once."))
@click.argument("username")
@click.pass_context
def users_disable(ctx, username):
    _set_active(ctx, username, False)


@users_group.command("enable", help=_("Enable a disabled account."))
@click.argument("username")
@click.pass_context
def users_enable(ctx, username):
    _set_active(ctx, username, True)


@users_group.command("reset-password", help=_("Give an account a new password; its sessions end "
                                              "at once."))
@click.argument("username")
@click.option("--password-stdin", is_flag=True,
              help=_("Read the password from standard input."))
@click.option("--must-change", is_flag=True,
              help=_("The holder must choose a new password at the next login."))
@click.pass_context
def users_reset(ctx, username, password_stdin, must_change):
    db = _open_db(ctx)[1]
    user = _find(db, username)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else accounts.generate_password()
    try:
        accounts.set_password(db, user["id"], password, must_change=must_change, actor=audit.CLI)
    except accounts.AccountError as e:
        raise click.ClickException(e.message()) from e
    click.echo(_("Password changed: %(name)s", name=user["username"]))
    if not password_stdin:
        click.echo(_("Password (shown only once, write it down): %(password)s", password=password))


@main.group(help=_("HTTPS on the post's network: the local certificate authority."))
def tls_group():
    pass


main.add_command(tls_group, "tls")


@tls_group.command("show", help=_("Show the certificate authority, its fingerprint and the addresses "
                                  "the server certificate covers."))
@click.pass_context
def tls_show(ctx):
    files = tls.files(_app(ctx).instance_path)
    if files is None:
        raise click.ClickException(_("No certificates yet: run `fieldapp init` or "
                                     "`fieldapp serve --https`."))
    click.echo(_("Certificate authority: %(path)s", path=str(files.ca_cert)))
    click.echo(_("SHA-256 fingerprint: %(fingerprint)s", fingerprint=files.fingerprint))
    click.echo(_("Server certificate covers: %(names)s", names=", ".join(files.names)))
    click.echo(_("Server certificate valid until: %(date)s (renewed by `fieldapp serve --https`)",
                 date=files.expires.date().isoformat()))


@main.command(help=_("Check this server's health: version, database, disk, backup, sync, clock and "
                       "certificates, each problem with what to do. Exit status 1 when there is a "
                       "problem."))
@click.option("--bundle", "bundle_path", default=None, metavar="FILE",
              type=click.Path(dir_okay=False, writable=True),
              help=_("Also write a support file (zip: logs, diagnostics, settings without secrets; no "
                     "database, no personal data) to send to the central office."))
@click.pass_context
def doctor(ctx, bundle_path):
    from fieldapp import diagnostics

    app = _app(ctx)
    report = diagnostics.gather(app.config, app.instance_path, full=True)
    rows = diagnostics.rows(report, _, i18n.cli_language())
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"  {label:<{width}}  {value}")
    click.echo()
    if report.ok:
        click.echo(_("No problems found."))
    else:
        click.echo(_("Problems found: %(n)s", n=len(report.findings)))
        for finding in report.findings:
            what, todo = diagnostics.message(finding, _)
            click.echo(f"  ✗ {what}")
            click.echo("    " + _("What to do: %(advice)s", advice=todo))
    log.info("doctor: %s", ", ".join(f.code for f in report.findings) or "ok")
    if bundle_path:
        try:
            diagnostics.write_bundle(bundle_path, report, app.config, app.instance_path, _)
        except OSError as e:
            raise click.ClickException(_("Cannot write %(path)s: %(error)s", path=bundle_path,
                                         error=e.strerror or type(e).__name__)) from e
        click.echo(_("Support file written to %(path)s: send it to the central office.",
                     path=bundle_path))
    ctx.exit(0 if report.ok else 1)


@main.command("open", help=_("Open fieldapp in this computer's web browser (HTTPS if it is served "
                             "with --https, else HTTP)."))
@click.option("--port", default=None, type=int,
              help=_("The port fieldapp serves on. Default: 8443 over HTTPS, else PORT from config."))
@click.option("--print", "print_only", is_flag=True, help=_("Print the address instead of opening it."))
@click.pass_context
def open_command(ctx, port, print_only):
    import webbrowser

    from fieldapp import local_url

    try:
        settings = _app(ctx).config
    except (click.ClickException, OSError):  # a desktop user may not read the service's instance
        settings = config.DEFAULTS
    url = local_url.find(settings, port)
    if url is None:
        url = local_url.http(settings, port)
        click.echo(_("fieldapp does not answer at %(url)s: start it (the service, or `fieldapp "
                     "serve`).", url=url), err=True)
    if print_only or not webbrowser.open(url):
        click.echo(url)


def _field_db(ctx):
    app, db = _open_db(ctx)
    if app.config["MODE"] != "field":
        raise click.ClickException(_("This is a central server: run this on a field server."))
    return app, db


def _central_db(ctx):
    app, db = _open_db(ctx)
    if app.config["MODE"] != "central":
        raise click.ClickException(_("This is a field server: run this on the central server."))
    return app, db


def _sync_error(e) -> click.ClickException:
    from sync.messages import error_text

    return click.ClickException(error_text(e.code, e.message, e.status, _))


@main.group("sync", invoke_without_command=True,
            help=_("Sync with the central server. Without a subcommand: sync now, with progress."))
@click.option("--batch-size", type=click.IntRange(1, 2000), default=None,
              help=_("Records per request. Default: SYNC_BATCH_SIZE (500)."))
@click.pass_context
def sync_group(ctx, batch_size):
    if ctx.invoked_subcommand is not None:
        return
    from sync import client, jobs

    app, db = _field_db(ctx)
    seen = client.Progress()  # how far the sync went, for the audit log if it stops
    try:
        central = client.Central(client.settings_for(db, app.config, i18n.cli_language()))
        with click.progressbar(length=1, label=_("Sending"), show_pos=True) as bar:
            def show(p):
                nonlocal seen
                seen = p
                bar.length = max(p.total, 1)
                bar.label = {"push": _("Sending"), "pull": _("Receiving"),
                             "finish": _("Finishing"), "done": _("Done")}[p.phase]
                bar.update(p.sent - bar.pos)

            done = client.run(db, central, batch_size=batch_size or app.config["SYNC_BATCH_SIZE"],
                              on_progress=show)
    except client.SyncError as e:
        audit.record(db, "sync.failed", actor=audit.CLI,
                     details=jobs.failure_details(seen, e.code, e.status))
        raise _sync_error(e) from e
    audit.record(db, "sync.run", actor=audit.CLI, details=jobs.run_details(done))
    _print_receipt(done.receipt, done.counts, done.pulled)
    if client.clock_skewed(done.clock_offset):
        click.echo(_("Warning: this computer's clock differs from the central server's by %(minutes)s "
                     "minutes. Set the date and time.", minutes=round(abs(done.clock_offset) / 60)))


def _print_receipt(receipt: dict, counts: dict, pulled: int | None = None) -> None:
    from sync import protocol

    click.echo(_("Central confirmed %(n)s records: %(stored)s stored, %(duplicate)s already there, "
                 "%(merged)s merged, %(conflict)s conflicts, %(rejected)s rejected.",
                 n=receipt["records"], **counts))
    if pulled is not None:
        click.echo(_("Received from central: %(n)s records.", n=pulled))
    click.echo(_("Receipt digest: %(digest)s", digest=protocol.short(receipt["digest"])))
    if receipt.get("matches") is False:
        click.echo(_("Warning: central's receipt does not match what this server was told during "
                     "the sync. Sync again; if it persists, tell the central office."))


@sync_group.command("enrol", help=_("Enrol this field server at the central server with a one-time "
                                    "code from the central office (asked for, or --code-stdin)."))
@click.argument("url")
@click.option("--code-stdin", is_flag=True, help=_("Read the enrolment code from standard input."))
@click.pass_context
def sync_enrol(ctx, url, code_stdin):
    from sync import client

    app, db = _field_db(ctx)
    code = sys.stdin.readline().strip() if code_stdin else click.prompt(_("Enrolment code"),
                                                                       hide_input=True)
    settings = client.Settings(url=url, verify=app.config["SYNC_CA_BUNDLE"] or True,
                               lang=i18n.cli_language())
    try:
        answer = client.enrol(db, settings, code, app.config["POST"])
    except client.SyncError as e:
        raise _sync_error(e) from e
    audit.record(db, "sync.enrolled", actor=audit.CLI, target=f"device:{answer['device']}",
                 details={"post": answer["post"], "central": url[:200]})
    click.echo(_("Enrolled as device %(name)s of post %(post)s.", name=answer["name"],
                 post=answer["post"]))


@sync_group.command("status", help=_("Show the central server, the last sync and what is pending."))
@click.pass_context
def sync_status(ctx):
    import json

    from fieldapp.storage import sync as store

    db = _field_db(ctx)[1]
    state = store.state(db)
    if not state.get("token"):
        raise click.ClickException(_("This field server is not enrolled at a central server yet."))
    click.echo(_("Central server: %(url)s", url=state["central_url"]))
    click.echo(_("Last successful sync: %(at)s", at=state.get("last_sync", _("never"))))
    pending = store.pending_count(db, int(state.get("push_checkpoint", 0)))
    click.echo(_("Changes waiting to be sent: %(n)s", n=pending))
    rejected = store.outcomes(db, "rejected")
    click.echo(_("Records refused by central: %(n)s", n=len(rejected)))
    for r in rejected:
        click.echo(f"  {r['uuid']}  {r['form'] or ''}  {r['message']}")
    if state.get("last_receipt"):
        receipt = json.loads(state["last_receipt"])
        _print_receipt(receipt, receipt["counts"])


@sync_group.command("export-bundle", help=_("Write the pending changes to a signed file to carry to "
                                            "the central office."))
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.pass_context
def sync_export_bundle(ctx, path):
    from sync import bundle, client

    app, db = _field_db(ctx)
    try:
        data, summary = bundle.export(db, app.config["SYNC_BATCH_SIZE"])
    except client.SyncError as e:
        raise _sync_error(e) from e
    Path(path).write_bytes(data)
    audit.record(db, "sync.bundle_exported", actor=audit.CLI, details=bundle.audit_details(summary))
    click.echo(_("Wrote %(n)s changes to %(path)s. Take it to the central office; import the "
                 "receipt they give back with `fieldapp sync import-receipt`.",
                 n=summary["records"], path=path))


@sync_group.command("import-receipt", help=_("Import the receipt file the central office gave back "
                                             "for a bundle."))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def sync_import_receipt(ctx, path):
    from sync import bundle, client

    db = _field_db(ctx)[1]
    try:
        receipt = bundle.import_receipt(db, Path(path).read_bytes())
    except client.SyncError as e:
        raise _sync_error(e) from e
    audit.record(db, "sync.receipt_imported", actor=audit.CLI, details=bundle.audit_details(receipt))
    _print_receipt(receipt, receipt["counts"])
    if not receipt["advanced"]:
        click.echo(_("This receipt was imported before: nothing changed."))


@sync_group.command("import-bundle", help=_("Central: import a post's bundle and write the receipt "
                                            "file to give back."))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--receipt", "receipt_path", required=True, type=click.Path(dir_okay=False),
              help=_("Where to write the receipt file."))
@click.pass_context
def sync_import_bundle(ctx, path, receipt_path):
    from flask_babel import force_locale

    from sync import client, server

    app, db = _central_db(ctx)
    try:
        with app.app_context(), force_locale(i18n.cli_language()):
            data, receipt = server.import_bundle(db, Path(path).read_bytes())
    except client.SyncError as e:
        raise _sync_error(e) from e
    Path(receipt_path).write_bytes(data)
    audit.record(db, "sync.bundle_imported", actor=audit.CLI, target=f"device:{receipt['device']}",
                 details=server.receipt_details(receipt))
    _print_receipt(receipt, receipt["counts"])
    click.echo(_("Receipt written to %(path)s: give it back to the post.", path=receipt_path))


@main.group("devices", help=_("Central: the devices of each post that may sync."))
def devices_group():
    pass


@devices_group.command("add", help=_("Register a device of a post; prints its one-time enrolment code."))
@click.argument("post")
@click.argument("name")
@click.option("--replaces", default=None, metavar="DEVICE_ID",
              help=_("The id of a device of the same post that this one replaces (lost, stolen or "
                     "broken): it is revoked at once."))
@click.pass_context
def devices_add(ctx, post, name, replaces):
    from fieldapp.storage import sync as store
    from sync import server

    app, db = _central_db(ctx)
    post = post.strip().upper()
    if accounts.rules.check_post("officer", post) or post == app.config["POST"]:
        raise click.BadParameter(accounts.message("invalid_post"), param_hint="POST")
    try:
        with storage_db.write(db):
            device_id, code = server.register(db, post=post, name=name.strip()[:80], by="cli",
                                              replaces=replaces.strip() if replaces else None)
            audit.record(db, "device.registered", actor=audit.CLI, target=f"device:{device_id}",
                         details={"post": post})
            if replaces:
                audit.record(db, "device.replaced", actor=audit.CLI, target=f"device:{replaces.strip()}",
                             details={"by": device_id})
    except store.ReplaceRefused as e:
        raise click.BadParameter(_("No device %(id)s of post %(post)s.", id=replaces, post=post),
                                 param_hint="--replaces") from e
    if replaces:
        click.echo(_("Device %(id)s replaced: its token no longer works.", id=replaces.strip()))
    click.echo(_("Device %(id)s registered for post %(post)s.", id=device_id, post=post))
    click.echo(_("Enrolment code (valid 7 days, shown only once): %(code)s", code=code))


@devices_group.command("list", help=_("List devices with their status and last sync."))
@click.pass_context
def devices_list(ctx):
    from fieldapp.storage import sync as store

    db = _central_db(ctx)[1]
    for d in store.devices(db):
        click.echo(f"{d['id']}  {d['post']:<10} {d['name']:<20} {d['status']:<8} "
                   f"{d['last_sync'] or '-':<28} {d['received']}")


@devices_group.command("revoke", help=_("Revoke a device: its token stops working at once."))
@click.argument("device_id")
@click.pass_context
def devices_revoke(ctx, device_id):
    from fieldapp.storage import sync as store

    db = _central_db(ctx)[1]
    with storage_db.write(db):
        revoked = store.revoke(db, device_id.strip())
        if revoked:
            audit.record(db, "device.revoked", actor=audit.CLI, target=f"device:{device_id.strip()}")
    if not revoked:
        raise click.ClickException(_("No device %(id)s that is not revoked already.", id=device_id))
    click.echo(_("Device revoked: %(id)s", id=device_id))


@main.command("purge", help=_(
    "Remove personal data whose retention ended: on a field server, of records central has held for "
    "FIELD_RETENTION_DAYS; on central, of records older than their purpose's CENTRAL_RETENTION_DAYS."))
@click.option("--dry-run", is_flag=True, help=_("Only count what would be removed; change nothing."))
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help=_("Judge retention as of this date (UTC) instead of now, e.g. with --dry-run to see "
                     "what a later purge will remove."))
@click.pass_context
def purge_command(ctx, dry_run, as_of):
    from datetime import UTC

    from fieldapp import retention

    app, db = _open_db(ctx)
    now = as_of.replace(tzinfo=UTC) if as_of else retention.utcnow()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=_("Purging"), show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        done = retention.run(db, app.config, now, dry_run=dry_run, progress=progress)
    except retention.BadSetting as e:
        raise click.ClickException(_(
            "FIELD_RETENTION_DAYS must be a number of days, and CENTRAL_RETENTION_DAYS a table of "
            "purposes and numbers of days (for example {\"assistance\": 1825}).")) from e
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(_("Would remove the personal data of %(n)s records.", n=len(done.uuids)) if dry_run
                else _("Removed the personal data of %(n)s records.", n=len(done.uuids)))
    for form, n in sorted(done.by_form.items()):
        click.echo(f"  {form}: {n}")
    for purpose, n in sorted(done.by_purpose.items()):
        click.echo("  " + _("purpose %(purpose)s: %(n)s", purpose=purpose, n=n))
    for purpose, n in sorted(done.unlimited.items()):
        click.echo(_("No retention set for purpose %(purpose)s: %(n)s records kept.",
                     purpose=purpose or "-", n=n))


@main.command("export", help=_("Central: export the merged records of every post to a file, with its "
                                  "codebook. Recorded in the exports' audit log."))
@click.argument("dataset", type=click.Choice(["intake", "participant", "course", "session", "enrolment",
                                              "attendance", "certificate", "attendance_table",
                                              "participant_summary"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "jsonl"]), default="csv",
              show_default=True)
@click.option("--labels", type=click.Choice(["codes", "labels", "both"]), default="codes", show_default=True,
              help=_("Answers to choice questions as codes, labels, or both."))
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True,
              help=_("Language of labels and headers."))
@click.option("--headers", type=click.Choice(["variables", "labels"]), default="variables", show_default=True)
@click.option("--profile", type=click.Choice(["full", "pseudonymised"]), default="pseudonymised",
              show_default=True)
@click.option("--purpose", default="", help=_("What the export is for (required for the full profile)."))
@click.option("--filter", "filter_args", multiple=True, metavar="NAME=VALUE",
              help=_("A filter as on the records page, e.g. post=CUC-1, start=2026-01-01, nationality=VE, "
                     "sex=female. Repeat for several."))
@click.option("--changed", is_flag=True, help=_("Only what changed since your last export of this data set "
                                                "and profile."))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, writable=True),
              help=_("The data file; CSV and JSON Lines get their codebook beside it."))
@click.pass_context
def export_command(ctx, dataset, fmt, labels, lang, headers, profile, purpose, filter_args, changed, output):
    import getpass

    from fieldapp import exports
    from fieldapp.forms import export

    app, db = _open_db(ctx)
    if app.config["MODE"] != "central":
        raise click.ClickException(_("Exports are made on the central server."))
    args = {}
    for item in filter_args:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.ClickException(_("Write each filter as NAME=VALUE: %(filter)s", filter=item))
        args[name.strip()] = value.strip()
    flt, errors = exports.parse_filter(args)
    problems = [f"{name}: {_(message)}" for name, message in errors.items()]
    problems += [f"--{name}: {_(message)}" for name, message in exports.check(
        dataset, fmt, labels=labels, lang=lang, headers=headers, profile=profile, purpose=purpose,
        incremental=changed).items()]
    if problems:
        raise click.ClickException("\n".join(problems))
    req = exports.Request(dataset=dataset, format=fmt, purpose=purpose, flt=flt, incremental=changed,
                          options=export.Options(labels=labels, lang=lang, headers=headers, profile=profile,
                                                 key=exports.pseudonym_key(app.config["SECRET_KEY"])))
    job = exports.start(db, req, username=f"cli:{getpass.getuser()}", actor=audit.CLI)
    with click.progressbar(length=max(job["total"], 1), label=_("Exporting"), show_pos=True) as bar:
        done = 0

        def progress(rows: int) -> None:
            nonlocal done
            bar.update(rows - done)
            done = rows

        try:
            rows, files = exports.write(db, job, Path(output), secret_key=app.config["SECRET_KEY"],
                                        progress=progress)
        except BaseException as e:
            exports.store.fail(db, job["id"], rows=done, error=type(e).__name__)
            raise
    exports.store.finish(db, job["id"], rows=rows, file=str(Path(output).resolve()))
    for f in files:
        click.echo(_("Wrote %(path)s", path=str(f)))
    click.echo(_("%(rows)s rows exported.", rows=rows))


def _read_passphrase(stdin: bool, *, confirm: bool) -> str:
    from fieldapp import backups

    if stdin:
        passphrase = sys.stdin.readline().rstrip("\n")
    else:
        passphrase = click.prompt(_("Backup passphrase"), hide_input=True,
                                  confirmation_prompt=_("Repeat the passphrase") if confirm else False)
    if confirm:
        try:
            backups.check_passphrase(passphrase)
        except backups.BackupError as e:
            raise click.ClickException(e.message()) from e
    return passphrase


def _backup_folder(app) -> Path:
    return Path(app.config["BACKUP_DIR"] or Path(app.instance_path) / "backups")


@main.group("backup", invoke_without_command=True,
            help=_("Back up this field server's database, encrypted with a passphrase, while it "
                   "keeps running. Without a subcommand: back up now."))
@click.option("--to", "folder", type=click.Path(file_okay=False), default=None,
              help=_("Folder to write the backup to, such as a USB stick. Default: BACKUP_DIR, "
                     "else the instance's backups folder."))
@click.option("--passphrase-stdin", is_flag=True,
              help=_("Read the passphrase from standard input instead of asking for it."))
@click.pass_context
def backup_group(ctx, folder, passphrase_stdin):
    if ctx.invoked_subcommand is not None:
        return
    from fieldapp import backups

    app, db = _field_db(ctx)
    db.close()
    folder = Path(folder) if folder else _backup_folder(app)
    if not folder.exists() and folder == Path(app.instance_path) / "backups":
        folder.mkdir()
    passphrase = _read_passphrase(passphrase_stdin, confirm=True)
    with click.progressbar(length=1, label=_("Copying"), show_pos=False) as bar:
        labels = {"copy": _("Copying"), "check": _("Checking"), "encrypt": _("Encrypting"),
                  "done": _("Done")}

        def show(p):
            bar.label = labels[p.phase]
            bar.length = max(p.total, 1)
            bar.update(p.done - bar.pos)

        try:
            made = backups.make(app.config["DATABASE"], Path(app.instance_path), folder,
                                post=app.config["POST"], passphrase=passphrase, progress=show,
                                actor=audit.CLI)
        except backups.BackupError as e:
            raise click.ClickException(e.message()) from e
    click.echo(_("Backup written: %(path)s (%(records)s records, %(bytes)s bytes).",
                 path=str(made.path), records=made.records, bytes=made.bytes))
    click.echo(_("Keep the passphrase apart from the backup: without it the backup cannot be "
                 "restored, by anyone."))


@backup_group.command("set-passphrase",
                      help=_("Set the passphrase that restores scheduled backups. The server "
                             "keeps only a public key: it can write backups but not read them."))
@click.option("--passphrase-stdin", is_flag=True,
              help=_("Read the passphrase from standard input instead of asking for it."))
@click.pass_context
def backup_set_passphrase(ctx, passphrase_stdin):
    from fieldapp import backups
    from fieldapp.backups import file as backup_file

    app = _app(ctx)
    passphrase = _read_passphrase(passphrase_stdin, confirm=True)
    path = Path(app.instance_path) / backups.KEY_FILE
    backups._write_json(path, backup_file.new_key_pair(passphrase))
    click.echo(_("Scheduled backups can be restored with this passphrase from now on: %(path)s",
                 path=str(path)))


@backup_group.command("show", help=_("Show what a backup file holds, without its passphrase."))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def backup_show(path):
    from fieldapp import backups

    try:
        header = backups.inspect(path)
    except backups.BackupError as e:
        raise click.ClickException(e.message()) from e
    _print_header(header)


def _print_header(header: dict) -> None:
    click.echo(_("Backup of post %(post)s made %(at)s by fieldapp %(version)s: %(records)s "
                 "records, database version %(schema)s.", post=header.get("post", "?"),
                 at=header.get("created_at", "?"), version=header.get("app_version", "?"),
                 records=header.get("records", "?"), schema=header.get("schema", "?")))


@main.command("restore", help=_("Replace this server's database with a backup, after checking "
                                "the backup. The database it replaces is kept beside it. Stop "
                                "fieldapp first."))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--passphrase-stdin", is_flag=True,
              help=_("Read the passphrase from standard input instead of asking for it."))
@click.option("--yes", is_flag=True, help=_("Do not ask for confirmation."))
@click.pass_context
def restore_command(ctx, path, passphrase_stdin, yes):
    from fieldapp import backups

    app = _app(ctx)
    try:
        header = backups.inspect(path)
    except backups.BackupError as e:
        raise click.ClickException(e.message()) from e
    _print_header(header)
    if header.get("post") != app.config["POST"]:
        click.echo(_("Warning: this backup is of post %(post)s; this server is post %(ours)s.",
                     post=header.get("post"), ours=app.config["POST"]))
    if not yes and not passphrase_stdin:
        click.confirm(_("Replace the database %(path)s with this backup?",
                        path=app.config["DATABASE"]), abort=True)
    passphrase = _read_passphrase(passphrase_stdin, confirm=False)
    try:
        done = backups.restore(app.config["DATABASE"], Path(app.instance_path), path, passphrase)
    except backups.BackupError as e:
        raise click.ClickException(e.message()) from e
    db = _open_db(ctx)[1]  # an older backup is upgraded now
    # The audit log is the backup's: anchor it where it ends, so that verify does not take the
    # events after the backup for deleted ones; then record the restore in it.
    audit.reanchor(db, actor=audit.CLI)
    audit.record(db, "backup.restored", actor=audit.CLI,
                 details={"file": Path(path).name, "records": header["records"],
                          "backup_created_at": header["created_at"]})
    db.close()
    click.echo(_("Restored %(records)s records from %(path)s.", records=header["records"],
                 path=str(path)))
    if done.previous:
        click.echo(_("The database it replaced is kept at %(path)s.", path=str(done.previous)))


@main.group("audit", help=_("The audit log: verify its chain, list events."))
def audit_group():
    pass


@audit_group.command("verify", help=_("Check every row of the audit log and its anchor; exit 1 "
                                      "naming the first bad row."))
@click.pass_context
def audit_verify(ctx):
    from fieldapp.domain.audit import PROBLEMS

    db = _open_db(ctx)[1]
    verdict = audit.verify(db)
    if verdict.ok:
        click.echo(_("ok, %(n)s rows", n=verdict.rows))
        if verdict.unanchored:
            click.echo(_("(the last %(n)s rows were written after the anchor was last updated: "
                         "normal only right after a crash)", n=verdict.unanchored))
        return
    p = verdict.problem
    click.echo(_("FAILED at row %(seq)s: %(why)s", seq=p.seq, why=_(
        PROBLEMS[p.code], seq=p.seq, last=p.last, anchor=p.anchor)), err=True)
    ctx.exit(1)


@audit_group.command("list", help=_("Show the latest events, newest first."))
@click.option("--event", default="", help=_("Only this event code, e.g. auth.login_failed."))
@click.option("--user", default="", help=_("Only events by this username or device id."))
@click.option("--target", default="", help=_("Only events about this record uuid, account number "
                                             "or device id."))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_context
def audit_list(ctx, event, user, target, limit):
    from fieldapp.domain import audit as rules
    from fieldapp.domain.audit import canonical

    flt, errors = rules.parse_filter({"event": event, "user": user, "target": target})
    if errors:
        raise click.UsageError(" ".join(_(m) for m in errors.values()))
    for row in audit.page(_open_db(ctx)[1], flt, limit=limit):
        target_text = f"{row['target_kind']}:{row['target_id']}" if row["target_id"] else "-"
        click.echo(f"{row['seq']:>7} {row['at'][:19]} {row['actor_name'] or row['actor_kind']:<20} "
                   f"{row['event']:<22} {target_text} {canonical(row['details'])} {row['address']}")


@audit_group.command("anchor", help=_("Anchor the audit log where it ends now (after restoring a "
                                      "backup, or a crash). Recorded in the log itself."))
@click.pass_context
def audit_anchor(ctx):

    old, new = audit.reanchor(_open_db(ctx)[1], actor=audit.CLI)
    click.echo(_("Anchored at row %(seq)s (was: %(old)s).", seq=new.seq,
                 old=old.seq if old else _("none")))


def _database(ctx) -> str:
    """The instance's database path, without opening or unlocking it."""
    from fieldapp import create_app

    path = config.instance_path(ctx.obj["instance"])
    if not (path / config.CONFIG_FILE).exists():
        raise click.ClickException(
            _("No instance at %(path)s. Run `fieldapp init` first.", path=str(path)))
    return create_app(instance=path).config["DATABASE"]


@main.group("encryption", help=_("Encryption of the database at rest (SQLCipher): status, enable, "
                                 "change the passphrase. Stop the server first."))
def encryption_group():
    pass


@encryption_group.command("status", help=_("Say whether the database is encrypted."))
@click.pass_context
def encryption_status(ctx):
    from fieldapp.storage import cipher

    database = _database(ctx)
    if storage_db.is_encrypted(database):
        click.echo(_("The database %(path)s is encrypted (SQLCipher %(version)s).", path=database,
                     version=cipher.version()))
    else:
        click.echo(_("The database %(path)s is not encrypted.", path=database))


@encryption_group.command("enable", help=_("Encrypt the plain database in place with a new passphrase "
                                           "(asked twice, or --passphrase-stdin)."))
@click.option("--passphrase-stdin", is_flag=True, help=_("Read the new passphrase from standard input."))
@click.pass_context
def encryption_enable(ctx, passphrase_stdin):
    database = _database(ctx)
    if storage_db.is_encrypted(database):
        raise _encryption_error(encryption.EncryptionError("already_encrypted", database))
    passphrase = _new_passphrase(passphrase_stdin)
    try:
        encryption.encrypt(database, passphrase)
    except encryption.EncryptionError as e:
        raise _encryption_error(e) from e
    click.echo(_("The database was encrypted."))
    click.echo(_("Keep the passphrase safe: without it the database cannot be opened, by anyone. "
                 "See docs/security.md."))


@encryption_group.command("change-passphrase", help=_(
    "Re-encrypt the database under a new passphrase. The current one comes from FIELDAPP_PASSPHRASE "
    "or is asked; with --passphrase-stdin, the current then the new one, a line each."))
@click.option("--passphrase-stdin", is_flag=True,
              help=_("Read the current and the new passphrase from standard input."))
@click.pass_context
def encryption_change(ctx, passphrase_stdin):
    database = _database(ctx)
    if not storage_db.is_encrypted(database):
        raise _encryption_error(encryption.EncryptionError("not_encrypted", database))
    old = sys.stdin.readline().rstrip("\r\n") if passphrase_stdin else _current_passphrase(database)
    _unlock(database, old)  # a wrong one is refused before the new one is asked
    new = _new_passphrase(passphrase_stdin)
    try:
        encryption.change_passphrase(database, old, new)
    except encryption.EncryptionError as e:
        raise _encryption_error(e) from e
    click.echo(_("The passphrase was changed. Backups made before keep the old one."))


@main.group(help=_("Extract, update and compile the message catalogs (for developers)."))
def translations():
    pass


def _pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=REPO)


@translations.command("extract", help=_("Write translations/messages.pot from the code."))
def translations_extract():
    _pybabel("extract", "-F", "translations/babel.cfg", "-k", "lazy_gettext", "--no-location",
             "--sort-output", "--project", "fieldapp", "-o", "translations/messages.pot", ".")


@translations.command("update", help=_("Merge messages.pot into the catalogs."))
def translations_update():
    translations_extract.callback()
    _pybabel("update", "-i", "translations/messages.pot", "-d", "translations", "--no-wrap",
             "--ignore-obsolete")


@translations.command("compile", help=_("Compile the catalogs (.po to .mo)."))
def translations_compile():
    _pybabel("compile", "-d", "translations", "--statistics")
