"""Plugins shipped with the gateway: ``pii.PIIRedactionPlugin`` and ``audit.AuditLogPlugin``."""
