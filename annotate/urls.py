from django.contrib.auth import views as auth_views
from django.urls import path

from annotate.views import projects

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", projects.project_list, name="project-list"),
    path("projects/new/", projects.project_create_view, name="project-create"),
    path("p/<slug:slug>/", projects.project_dashboard, name="project-dashboard"),
    path("p/<slug:slug>/settings/", projects.project_settings, name="project-settings"),
    path("p/<slug:slug>/members/", projects.project_member_add, name="project-member-add"),
    path("p/<slug:slug>/import/", projects.project_import, name="project-import"),
]
