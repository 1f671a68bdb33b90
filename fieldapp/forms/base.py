"""The base of every Flask-WTF form in fieldapp: fields come from the form body only."""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted


class Form(FlaskForm):
    class Meta:
        def wrap_formdata(self, form, formdata):
            # Flask-WTF merges file parts into the form data, so a multipart request could pass a
            # file where text belongs. Answers are typed, never uploaded: read the form body only.
            if formdata is _Auto:
                return request.form if _is_submitted() else None
            return formdata
