"""fieldapp: offline-first field data collection. `create_app()` wires everything."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

PACKAGE_DIR = Path(__file__).parent


def shipped_dir(name: str) -> Path:
    """static/ or translations/: inside the package when installed, beside it in a checkout."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


def create_app(config: dict | None = None, instance: str | Path | None = None) -> Flask:
    """Build the app: `create_app({"DATABASE": "/tmp/x.db", "SECRET_KEY": "..."})`."""
    from fieldapp import config as settings
    from fieldapp import i18n
    from fieldapp.web import init_app as init_web

    instance_dir = settings.instance_path(instance)
    app = Flask(
        __name__,
        instance_path=str(instance_dir),
        static_folder=str(shipped_dir("static")),
        static_url_path="/static",
        template_folder="web/templates",
    )
    settings.load(app, instance_dir, config)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError(
            f"No secret key: run `fieldapp init` to create {instance_dir / settings.CONFIG_FILE}"
        )
    i18n.init_app(app)
    init_web(app)
    return app
