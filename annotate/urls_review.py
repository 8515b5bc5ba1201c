"""Routes of the review page, meeting mode and gold-label exports (included by annotate.urls)."""

from django.urls import path

from annotate.views import exports, review

meeting = "p/<slug:slug>/review/meetings/<int:pk>/"

urlpatterns = [
    path("p/<slug:slug>/review/", review.review_page, name="review"),
    path("p/<slug:slug>/review/meetings/", review.meeting_start_view, name="review-meeting-start"),
    path(meeting, review.meeting_page, name="review-meeting"),
    path(f"{meeting}items/<int:position>/", review.meeting_page, name="review-meeting-item"),
    path(f"{meeting}adjudicate/", review.adjudicate_view, name="review-adjudicate"),
    path(f"{meeting}versions/", review.publish_view, name="review-publish"),
    path(f"{meeting}criteria/", review.create_criterion_view, name="review-create-criterion"),
    path(f"{meeting}regrade/", review.send_back_view, name="review-send-back"),
    path(f"{meeting}decisions/", review.decision_view, name="review-decision"),
    path(f"{meeting}notes/", review.notes_view, name="review-meeting-notes"),
    path(f"{meeting}end/", review.meeting_end_view, name="review-meeting-end"),
    path(f"{meeting}summary.md", review.meeting_summary_view, name="review-meeting-summary"),
    path("p/<slug:slug>/exports/", exports.exports_page, name="exports"),
    path("p/<slug:slug>/exports/<int:pk>/download/", exports.export_download, name="export-download"),
]
