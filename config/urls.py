from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("", include("validators.urls")),
    path("", include("annotate.urls")),
]

handler404 = "config.errors.not_found"
