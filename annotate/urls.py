from django.contrib.auth import views as auth_views
from django.urls import path

from annotate.views import auth, grading, projects

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", projects.project_list, name="project-list"),
    path("projects/new/", projects.project_create_view, name="project-create"),
    path("guide/selectors/", projects.selector_guide, name="selector-guide"),
    path("p/<slug:slug>/", projects.project_dashboard, name="project-dashboard"),
    path("p/<slug:slug>/settings/", projects.project_settings, name="project-settings"),
    path("p/<slug:slug>/members/", projects.project_member_add, name="project-member-add"),
    path("p/<slug:slug>/import/", projects.project_import, name="project-import"),
    path(
        "p/<slug:slug>/import/sample-<str:kind>.jsonl", projects.project_import_sample,
        name="project-import-sample",
    ),
    # Grading (single outputs), the annotator's history and criteria drift while grading.
    path("p/<slug:slug>/grade/", grading.grade_page, name="grade-page"),
    path("p/<slug:slug>/grade/submit/", grading.grade_submit_view, name="grade-submit"),
    path("p/<slug:slug>/grade/skip/", grading.grade_skip_view, name="grade-skip"),
    path("p/<slug:slug>/grade/undo/", grading.grade_undo_view, name="grade-undo"),
    path("p/<slug:slug>/grade/history/", grading.grade_history, name="grade-history"),
    path(
        "p/<slug:slug>/grade/reopen/<int:output_id>/", grading.grade_reopen_view,
        name="grade-reopen",
    ),
    path("p/<slug:slug>/grade/criteria/", grading.criterion_add_view, name="grade-criterion-add"),
    path(
        "p/<slug:slug>/grade/criteria/<slug:key>/", grading.criterion_refine_view,
        name="grade-criterion-refine",
    ),
    # Pairwise: three-alternative forced choice.
    path("p/<slug:slug>/pairwise/", grading.pairwise_page, name="pairwise-page"),
    path("p/<slug:slug>/pairwise/submit/", grading.pairwise_submit_view, name="pairwise-submit"),
    path("p/<slug:slug>/pairwise/skip/", grading.pairwise_skip_view, name="pairwise-skip"),
    path("p/<slug:slug>/pairwise/undo/", grading.pairwise_undo_view, name="pairwise-undo"),
]

# Criteria-drift review, meeting mode and gold-label exports.
from annotate.urls_review import urlpatterns as review_urlpatterns  # noqa: E402

urlpatterns += review_urlpatterns

from annotate.views import rankings  # noqa: E402

urlpatterns += [path("p/<slug:slug>/rankings/", rankings.rankings_page, name="rankings")]

from annotate.views import criteria, team  # noqa: E402

urlpatterns += [
    path("p/<slug:slug>/criteria/", criteria.criteria_page, name="criteria"),
    path("p/<slug:slug>/criteria/add/", criteria.criterion_add_view, name="criterion-add"),
    path(
        "p/<slug:slug>/criteria/<slug:key>/refine/", criteria.criterion_refine_view,
        name="criterion-refine",
    ),
    path(
        "p/<slug:slug>/criteria/<slug:key>/retire/", criteria.criterion_retire_view,
        name="criterion-retire",
    ),
    path(
        "p/<slug:slug>/criteria/<slug:key>/restore/", criteria.criterion_restore_view,
        name="criterion-restore",
    ),
    path("p/<slug:slug>/team/", team.team_page, name="team"),
]

from annotate.views import output_actions, outputs  # noqa: E402

urlpatterns += [
    path("p/<slug:slug>/outputs/bulk/", output_actions.outputs_bulk_view, name="outputs-bulk"),
    path("p/<slug:slug>/outputs/", outputs.output_list, name="output-list"),
    path("p/<slug:slug>/outputs/<int:output_id>/", outputs.output_detail, name="output-detail"),
]
