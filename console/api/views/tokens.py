"""Personal API tokens: list, create (the secret is in the response, once),
revoke and rotate.

A member sees and revokes only their own tokens (another user's token is a
404); an admin sees and revokes everyone's, and each revocation is an audit
Event naming the admin.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console.api.exceptions import Conflict
from console.api.serializers import StrictFieldsMixin
from console.core.actions.tokens import (
    TokenRevoked,
    do_create_api_token,
    do_revoke_api_token,
    do_rotate_api_token,
)
from console.core.models import ApiToken
from console.core.models.tokens import TokenState


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    state = serializers.ChoiceField(choices=TokenState.choices, read_only=True,
                                    help_text="active, expired or revoked")
    prefix = serializers.CharField(read_only=True,
                                   help_text="The secret's first characters, to recognise it")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "user", "state", "created_at", "expires_at",
                  "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiTokenSecretSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text=(
        "The secret: send it as `Authorization: Token <secret>`. Shown in this response "
        "only; Coupler stores its hash."))

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What uses the token")
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, max_value=100_000,
        help_text="Lifetime in days (default COUPLER_API_TOKEN_DAYS, at most "
                  "COUPLER_API_TOKEN_MAX_DAYS)")


def _with_secret(token: ApiToken, secret: str) -> dict:
    token.token = secret
    return ApiTokenSecretSerializer(token).data


@extend_schema_view(
    list=extend_schema(summary="Your API tokens (admins: everyone's)"),
    retrieve=extend_schema(summary="An API token (never its secret)"),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return ApiToken.objects.for_user(self.request.user).select_related("user")

    @extend_schema(summary="Create an API token for yourself",
                   request=ApiTokenCreateSerializer,
                   responses={201: ApiTokenSecretSerializer,
                              400: OpenApiResponse(description="Per-field errors")})
    def create(self, request):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = do_create_api_token(
            request.user, name=serializer.validated_data["name"],
            expires_in_days=serializer.validated_data.get("expires_in_days"),
            actor=request.user.get_username())
        return Response(_with_secret(token, secret), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API token (it stops working at once)", request=None,
                   responses={200: ApiTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = do_revoke_api_token(self.get_object(), actor=request.user.get_username())
        return Response(ApiTokenSerializer(token).data)

    @extend_schema(summary="Rotate an API token: a new secret, the old one revoked",
                   request=None,
                   responses={201: ApiTokenSecretSerializer,
                              409: OpenApiResponse(description="The token is revoked")})
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        try:
            token, secret = do_rotate_api_token(self.get_object(),
                                                actor=request.user.get_username())
        except TokenRevoked as exc:
            raise Conflict(str(exc)) from exc
        return Response(_with_secret(token, secret), status=status.HTTP_201_CREATED)
