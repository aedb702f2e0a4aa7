from django.utils.translation import gettext_lazy as _
from rest_framework.pagination import PageNumberPagination as _Base

from core.errors import ApiError

MAX_PAGE = 1_000_000


def _positive_int(request, name: str, maximum: int) -> int | None:
    """One decimal value in 1..maximum, or None when absent; anything else is a 400."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    raw = values[0]
    if len(values) > 1 or not raw.isascii() or not raw.isdigit() or len(raw) > 7 or not 1 <= int(raw) <= maximum:
        raise ApiError(
            "bad_query",
            _("%(name)s must be one whole number from 1 to %(maximum)s.") % {"name": name, "maximum": maximum},
        )
    return int(raw)


class PageNumberPagination(_Base):
    """`{"count", "next", "previous", "results"}` (contracts §6). `page` and `page_size`
    are single whole numbers in range (a 400 `bad_query` otherwise); a page past the
    last is a 404."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        return _positive_int(request, self.page_size_query_param, self.max_page_size) or self.page_size

    def paginate_queryset(self, queryset, request, view=None):
        _positive_int(request, self.page_query_param, MAX_PAGE)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.page_query_param: MAX_PAGE, self.page_size_query_param: self.max_page_size}
        for parameter in parameters:
            if parameter["name"] in bounds:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": bounds[parameter["name"]]}
        return parameters
