from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from annotate.throttles import login_attempt_wait


class LoginView(auth_views.LoginView):
    """Django's login form, with the same attempt limits as the API's token endpoint."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        wait = login_attempt_wait(request, self)
        if wait is None:
            return super().post(request, *args, **kwargs)
        # The password is not even checked: a throttled guess must learn nothing.
        form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
        response = self.render_to_response(
            self.get_context_data(form=form, throttled_for=wait), status=429
        )
        response["Retry-After"] = str(wait)
        return response
