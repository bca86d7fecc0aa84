from django.contrib import admin
from django.urls import include, path

from agents.api.endpoints import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/", include("webhooks.urls")),
    path("api/v1/", api.urls),
    path("", include("agents.urls")),
]
