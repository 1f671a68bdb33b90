"""Roles and what each may do. Views declare the roles they allow; this module says who sees what."""

from __future__ import annotations

OFFICER, SUPERVISOR, CENTRAL, ADMIN = "officer", "supervisor", "central", "admin"
ROLES = (OFFICER, SUPERVISOR, CENTRAL, ADMIN)

# Who may read and correct intake records; who may capture new ones at a post.
RECORD_READERS = (OFFICER, SUPERVISOR, CENTRAL)
RECORD_CAPTURERS = (OFFICER, SUPERVISOR)
# Specific needs are sensitive: the post's field staff and central office, not account admins.
SENSITIVE_READERS = (OFFICER, SUPERVISOR, CENTRAL)
# Correcting a record rewrites every section, so only those who see every section may do it.
RECORD_EDITORS = tuple(r for r in RECORD_READERS if r in SENSITIVE_READERS)
# Who may create and change training courses and their sessions.
TRAINING_MANAGERS = (SUPERVISOR, CENTRAL)

# What a post's admin may manage on the web: accounts of their own post in these roles. Central
# accounts see every post, so they are made with the command line on the server itself.
POST_ADMIN_ROLES = (OFFICER, SUPERVISOR, ADMIN)
# Who sets up the post's phones and tablets: the laptop's addresses and its certificate authority.
DEVICE_SETUP = (SUPERVISOR, ADMIN)
# Who syncs a post with central (and enrols it, and carries bundles).
SYNC_OPERATORS = (SUPERVISOR, ADMIN)
# Who backs up the post's laptop (the backup is encrypted: writing one reveals nothing).
BACKUP_OPERATORS = (SUPERVISOR, ADMIN)
# At central: who sees the devices' dashboard, who registers and revokes devices, who resolves
# conflicts between a post's version and central's (they read both, so every section).
CENTRAL_DASHBOARD = (CENTRAL, ADMIN)
DEVICE_ADMINS = (ADMIN,)
CONFLICT_RESOLVERS = (CENTRAL,)
# At central: who analyses the merged records of every post — browse, summaries, duplicate persons,
# exports. Central staff only: an admin manages accounts and devices and sees no records.
CENTRAL_ANALYSTS = (CENTRAL,)
# At central: who answers data subject requests — produce everything held about a person, correct
# it, erase it. Central staff only, like every view of records: an admin sees no records.
SUBJECT_REQUEST_HANDLERS = (CENTRAL,)


def sees_all_posts(role: str) -> bool:
    return role == CENTRAL


def may_see_post(role: str, user_post: str | None, record_post: str) -> bool:
    """Officers and supervisors see their own post only; central sees every post."""
    return sees_all_posts(role) or (user_post is not None and user_post == record_post)


def may_see_sensitive(role: str) -> bool:
    return role in SENSITIVE_READERS
# Who sees the server's diagnostics (disk, backups, sync, certificates) and downloads the support file.
DIAGNOSTICS = (SUPERVISOR, ADMIN)
