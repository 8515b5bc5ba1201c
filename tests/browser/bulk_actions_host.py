"""A URL configuration for the browser test of the bulk-action controls: the site's own URLs
plus one page that hosts the controls partial inside `<form id="output-bulk-form">`, as the
outputs list does, so the partial is tested the way a list page will use it."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template import engines
from django.urls import path

from annotate.access import project_for
from annotate.models import Output
from annotate.views.output_actions import bulk_actions_context
from config.urls import urlpatterns as site_urlpatterns

HOST_PAGE = """{% extends "base.html" %}{% block content %}
<h1>Outputs</h1>
<form id="output-bulk-form" method="get">
  {% for output in outputs %}
    <label><input type="checkbox" name="output" value="{{ output.pk }}"> {{ output.system }}: {{ output.text }}</label>
  {% endfor %}
  {% include "annotate/partials/output_bulk_actions.html" %}
</form>
{% endblock %}"""


@login_required
def host_page(request, slug):
    project, _ = project_for(request.user, slug)
    template = engines["django"].from_string(HOST_PAGE)
    outputs = Output.objects.filter(project=project).order_by("pk")
    context = {"project": project, "outputs": outputs, **bulk_actions_context(project, request.user)}
    return HttpResponse(template.render(context, request))


urlpatterns = [*site_urlpatterns, path("host/<slug:slug>/outputs/", host_page)]
