from django.urls import path

from webhooks import views

urlpatterns = [
    path("messenger/", views.messenger_webhook, name="messenger-webhook"),
]

urlpatterns += [
    # Meta's Data Deletion Request Callback, and the status page its answer links to.
    path("messenger/data-deletion/", views.data_deletion_callback, name="messenger-data-deletion"),
    path(
        "messenger/data-deletion/<str:code>/",
        views.data_deletion_status,
        name="messenger-data-deletion-status",
    ),
]
