from django.urls import path

from webhooks import views

urlpatterns = [
    path("messenger/", views.messenger_webhook, name="messenger-webhook"),
]
