"""Blueprints (thin views) and templates."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from flask_wtf.csrf import CSRFProtect

    from fieldapp.web import (
        access,
        admin,
        api,
        audit_log,
        auth,
        backups,
        central,
        connect,
        db,
        diagnostics,
        errors,
        exports,
        headers,
        main,
        merged,
        persons,
        pwa,
        records,
        subjects,
        summary,
        syncing,
        trainings,
    )

    CSRFProtect(app)
    db.init_app(app)
    access.init_app(app)
    headers.init_app(app)
    errors.init_app(app)
    for blueprint in (main.bp, auth.bp, records.bp, trainings.bp, admin.bp, api.bp, pwa.bp,
                      connect.bp, syncing.bp, central.bp, merged.bp, exports.bp, persons.bp,
                      summary.bp, diagnostics.bp, subjects.bp, backups.bp, audit_log.bp):
        app.register_blueprint(blueprint)
    from sync import server as sync_server

    sync_server.init_app(app)
    _template_helpers(app)


def _template_helpers(app: Flask) -> None:
    from datetime import date, datetime

    from flask_babel import format_date, format_datetime, format_decimal, format_percent

    from fieldapp.domain import roles
    from fieldapp.domain.text import fold
    from fieldapp.forms.builder import choice_label, choices
    from fieldapp.forms.html import relevance
    from fieldapp.web.admin import ROLE_LABELS
    from fieldapp.web.main import asset_url
    from fieldapp.web.pwa import app_text

    app.jinja_env.globals.update(
        roles=roles,
        fold=fold,
        asset=asset_url,
        app_text=app_text,
        choices=choices,
        choice_label=choice_label,
        relevance=relevance,
        role_label=lambda role: ROLE_LABELS.get(role, role),
        format_iso_date=lambda text: format_date(date.fromisoformat(text), "medium"),
        format_iso_date_long=lambda text: format_date(date.fromisoformat(text), "long"),
        percent=lambda share: format_percent(float(share)),  # the locale's own pattern
        hours=lambda h: format_decimal(round(float(h), 2), "#,##0.##"),
        format_iso_datetime=lambda text: format_datetime(
            datetime.fromisoformat(text.replace("Z", "+00:00")), "medium"),
    )
    app.jinja_env.filters["number"] = format_decimal
