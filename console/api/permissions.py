"""Who may do what through the API.

Reading is for any authenticated user; what they see is narrowed by each
viewset's ``for_user`` queryset (another tenant's object is a 404). Writes to
tenants, quotas and hosts are for platform admins (``is_staff``).
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


class IsAdminOrReadOnly(BasePermission):
    message = "Only platform admins may change this."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or is_admin(request.user)


class IsAdmin(BasePermission):
    message = "Only platform admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)
