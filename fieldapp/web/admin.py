"""Account administration: list, create, change role/post/status, reset passwords."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import Length, Optional

from fieldapp import accounts
from fieldapp.domain.roles import ADMIN, POST_ADMIN_ROLES
from fieldapp.forms.base import Form
from fieldapp.storage import users
from fieldapp.web import audit
from fieldapp.web.access import allow
from fieldapp.web.db import get_db

bp = Blueprint("admin", __name__, url_prefix="/<lang>/admin")

ROLE_LABELS = {
    "officer": lazy_gettext("Field officer"),
    "supervisor": lazy_gettext("Supervisor"),
    "central": lazy_gettext("Central office"),
    "admin": lazy_gettext("Administrator"),
}


def _role_choices():
    return [(r, ROLE_LABELS[r]) for r in POST_ADMIN_ROLES]


class AccountForm(Form):
    full_name = StringField(lazy_gettext("Full name"), validators=[Optional(), Length(max=100)])
    role = SelectField(lazy_gettext("Role"), choices=_role_choices, validate_choice=False)
    active = BooleanField(lazy_gettext("Account active"), default=True)
    must_change_password = BooleanField(
        lazy_gettext("Must choose a new password at the next login"), default=True)


class NewAccountForm(AccountForm):
    username = StringField(lazy_gettext("Username"), validators=[Length(max=40)])
    password = PasswordField(
        lazy_gettext("Password"), validators=[Optional(), Length(max=256)],
        description=lazy_gettext("Leave empty to generate one; it is shown once."),
    )


class ResetForm(Form):
    pass


def _target(user_id: int) -> dict:
    """An account this admin may manage: same post, a field role. Others are not found."""
    user = users.get(get_db(), user_id)
    if user is None or user["post"] != g.user["post"] or user["role"] not in POST_ADMIN_ROLES:
        abort(404)
    return user


def _check_role(form) -> bool:
    if form.role.data not in POST_ADMIN_ROLES:
        form.role.errors = [accounts.message("invalid_role")]
        return False
    return True


@bp.get("/users")
@allow(ADMIN)
def index():
    return render_template("admin/users.html", users=users.all_users(get_db(), g.user["post"]),
                           role_labels=ROLE_LABELS)


@bp.route("/users/new", methods=["GET", "POST"])
@allow(ADMIN)
def new():
    form = NewAccountForm()
    if request.method == "POST" and form.validate_on_submit() and _check_role(form):
        password = form.password.data or accounts.generate_password()
        try:
            accounts.create(get_db(), username=form.username.data or "", password=password,
                            role=form.role.data, post=g.user["post"],
                            full_name=form.full_name.data or "",
                            must_change=form.must_change_password.data, actor=audit.actor())
        except accounts.AccountError as e:
            form[e.field].errors = [e.message()]
        else:
            return render_template("admin/created.html", username=form.username.data.strip().lower(),
                                   password=None if form.password.data else password)
    return render_template("admin/user_form.html", form=form, user=None), \
        422 if request.method == "POST" else 200


@bp.route("/users/<int(max=2147483647):user_id>", methods=["GET", "POST"])
@allow(ADMIN)
def edit(user_id):
    target = _target(user_id)
    form = AccountForm(data=target if request.method == "GET" else None)
    if request.method == "POST" and form.validate_on_submit() and _check_role(form):
        if target["id"] == g.user["id"] and (form.role.data != ADMIN or not form.active.data):
            form.role.errors = [gettext("You cannot remove your own administrator access.")]
        else:
            try:
                accounts.update(get_db(), user_id, role=form.role.data, post=g.user["post"],
                                full_name=form.full_name.data or "", active=form.active.data,
                                must_change=form.must_change_password.data,
                                actor=audit.actor())
            except accounts.AccountError as e:
                form[e.field].errors = [e.message()]
            else:
                flash(gettext("Account updated."), "success")
                return redirect(url_for("admin.index"))
    return render_template("admin/user_form.html", form=form, user=target,
                           reset_form=ResetForm()), 422 if request.method == "POST" else 200


@bp.post("/users/<int(max=2147483647):user_id>/password")
@allow(ADMIN)
def reset_password(user_id):
    target = _target(user_id)
    if not ResetForm().validate_on_submit():
        abort(400)
    password = accounts.generate_password()
    # The administrator has seen it: its holder chooses their own at the next login.
    accounts.set_password(get_db(), user_id, password, must_change=True, actor=audit.actor())
    return render_template("admin/created.html", username=target["username"], password=password,
                           reset=True)
