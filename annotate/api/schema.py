"""The OpenAPI schema class of every API view.

Any request with a body can be refused before a view sees it: 413 when a JSON body is over
DATA_UPLOAD_MAX_MEMORY_SIZE (annotate.api.errors), 415 when its content type is none the view
parses. Both answer the usual {"errors": [...]}, so the schema says so for every write
instead of each view repeating it.
"""

from __future__ import annotations

from drf_spectacular import openapi

from annotate.api.errors import ErrorsSerializer

_REFUSED_BEFORE_THE_VIEW = {
    "413": "The request body is over DATA_UPLOAD_MAX_MEMORY_SIZE.",
    "415": "The body's content type is none this operation reads.",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if self.method in ("POST", "PUT", "PATCH") and direction == "response":
            for code, description in _REFUSED_BEFORE_THE_VIEW.items():
                if code not in responses:
                    response = self._get_response_for_code(ErrorsSerializer, code)
                    responses[code] = {**response, "description": description}
        return responses
