from django.urls import path

from validators.views import assist, pages, report

urlpatterns = [
    path("p/<slug:slug>/validators/", pages.validator_list, name="validator-list"),
    path("p/<slug:slug>/validators/new/", pages.validator_create_view, name="validator-create"),
    path("p/<slug:slug>/validators/try/", pages.validator_try_view, name="validator-try"),
    path("p/<slug:slug>/validators/export/", pages.validators_export_view, name="validators-export"),
    path("p/<slug:slug>/validators/import/", pages.validators_import_view, name="validators-import"),
    path(
        "p/<slug:slug>/validators/external/", pages.external_verdicts_import_view,
        name="external-verdicts-import",
    ),
    path(
        "p/<slug:slug>/validators/external/sample.jsonl", pages.external_verdicts_sample_view,
        name="external-verdicts-sample",
    ),
    path("p/<slug:slug>/validators/<int:pk>/", pages.validator_detail, name="validator-detail"),
    path("p/<slug:slug>/validators/<int:pk>/revise/", pages.validator_revise_view, name="validator-revise"),
    path("p/<slug:slug>/validators/<int:pk>/archive/", pages.validator_archive_view, name="validator-archive"),
    path("p/<slug:slug>/providers/", pages.provider_save_view, name="provider-save"),
    path("p/<slug:slug>/runs/", pages.run_start_view, name="run-start"),
    path("p/<slug:slug>/runs/<int:pk>/", pages.run_detail, name="run-detail"),
    path("p/<slug:slug>/verdicts/", pages.verdict_matrix_view, name="verdict-matrix"),
]

urlpatterns += [
    path("p/<slug:slug>/report-card/", report.report_card_view, name="report-card"),
    path("p/<slug:slug>/pairwise-settings/", report.pairwise_setting_view, name="pairwise-setting"),
    path("p/<slug:slug>/report-card/<slug:key>/settings/", report.criterion_setting_view, name="criterion-setting"),
    path("p/<slug:slug>/suites/", report.suite_save_view, name="suite-save"),
    path("p/<slug:slug>/suites/<int:pk>/", report.suite_detail, name="suite-detail"),
    path("p/<slug:slug>/suites/<int:pk>/export/", report.suite_export, name="suite-export"),
    path("p/<slug:slug>/assist/criteria/", assist.suggest_criteria_view, name="suggest-criteria"),
    path("p/<slug:slug>/assist/criteria/accept/", assist.accept_criterion_view, name="criterion-accept"),
    path("p/<slug:slug>/assist/candidates/", assist.propose_candidates_view, name="propose-candidates"),
]
