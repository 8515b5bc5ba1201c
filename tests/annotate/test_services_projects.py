import pytest
from django.core.exceptions import ValidationError

from annotate.services.projects import project_settings_update


@pytest.mark.django_db
class TestProjectSettingsUpdate:
    def test_rating_scale_without_threshold_is_refused_and_nothing_is_saved(self, project):
        with pytest.raises(ValidationError) as refused:
            project_settings_update(project=project, scale="rating", overlap=2)

        assert refused.value.message_dict == {
            "pass_threshold": ["A rating scale needs a pass threshold."],
        }
        project.refresh_from_db()
        assert (project.scale, project.pass_threshold, project.overlap) == ("binary", None, 1)

    def test_rating_scale_with_threshold_is_saved(self, project):
        updated = project_settings_update(
            project=project, scale="rating", scale_min=1.0, scale_max=5.0, pass_threshold=4.0,
        )

        project.refresh_from_db()
        assert (project.scale, project.scale_min, project.scale_max, project.pass_threshold) == (
            "rating", 1.0, 5.0, 4.0)
        assert updated.pass_threshold == 4.0
