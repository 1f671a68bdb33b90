"""Roles and what each may do. Views declare the roles they allow; this module says who sees what."""

from __future__ import annotations

OFFICER, SUPERVISOR, CENTRAL, ADMIN = "officer", "supervisor", "central", "admin"
ROLES = (OFFICER, SUPERVISOR, CENTRAL, ADMIN)

# Who may read and correct intake records; who may capture new ones at a post.
RECORD_READERS = (OFFICER, SUPERVISOR, CENTRAL)
RECORD_CAPTURERS = (OFFICER, SUPERVISOR)
# Specific needs are sensitive: the post's field staff and central office, not account admins.
SENSITIVE_READERS = (OFFICER, SUPERVISOR, CENTRAL)


def sees_all_posts(role: str) -> bool:
    return role == CENTRAL


def may_see_post(role: str, user_post: str | None, record_post: str) -> bool:
    """Officers and supervisors see their own post only; central sees every post."""
    return sees_all_posts(role) or (user_post is not None and user_post == record_post)


def may_see_sensitive(role: str) -> bool:
    return role in SENSITIVE_READERS
