from django.urls import path

from agents import views

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("tickets/<int:ticket_id>/", views.inbox, name="inbox-ticket"),
    path("reports/", views.reports, name="reports"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
]
