"""The user's API tokens: create one (its secret shown on this response only),
list and revoke; admins also see and revoke everyone's tokens (audited)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from console.core.actions.tokens import (
    check_token_fields,
    default_days,
    do_create_api_token,
    do_revoke_api_token,
    max_days,
)
from console.core.models import ApiToken

# The admin's table of everyone's tokens: the newest this many.
ALL_TOKENS_SHOWN = 200


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("What will use it, e.g. “CI pipeline”."))
    expires_in_days = forms.IntegerField(label=_("Expires in (days)"), min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["expires_in_days"]
        field.initial = default_days()
        field.max_value = max_days()
        field.widget.attrs["max"] = max_days()
        field.help_text = _("At most %(max)d days.") % {"max": max_days()}

    def clean(self):
        cleaned = super().clean()
        for field, errors in check_token_fields(cleaned.get("name", ""),
                                                cleaned.get("expires_in_days")).items():
            if field in cleaned:
                self.add_error(field, errors)
        return cleaned


@login_required
def token_list(request):
    form = TokenForm(request.POST or None)
    token = secret = None
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = do_create_api_token(
                request.user, name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
                actor=request.user.get_username())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            form = TokenForm()
    mine = ApiToken.objects.filter(user=request.user)
    everyone = None
    if request.user.is_staff:
        everyone = (ApiToken.objects.for_user(request.user).exclude(user=request.user)
                    .select_related("user")[:ALL_TOKENS_SHOWN])
    response = render(request, "tokens/list.html", {
        "form": form, "secret": secret, "new_token": token,
        "mine": mine, "everyone": everyone, "section": "tokens",
        "everyone_limit": ALL_TOKENS_SHOWN,
    })
    # The secret is on this page only: keep it out of caches and history.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken.objects.for_user(request.user), pk=pk)
    do_revoke_api_token(token, actor=request.user.get_username())
    messages.success(request, _("Token %(name)s (%(prefix)s…) revoked; recorded in the audit "
                                "log.") % {"name": token.name, "prefix": token.prefix})
    return redirect("api-tokens")
