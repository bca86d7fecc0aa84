from django.contrib.admin.apps import AdminConfig


class HelpdeskAdminConfig(AdminConfig):
    """Django's admin, with the helpdesk's site (`helpdesk.admin.HelpdeskAdminSite`)."""

    default_site = "helpdesk.admin.HelpdeskAdminSite"
