"""A user's language and time zone (empty: follow the browser), and the
language switcher of every page."""

import zoneinfo
from functools import cache

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from console.core.models import UserPreference


@cache
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(
        label=_("Time zone"), required=False,
        help_text=_("Times on every page are shown in this zone; relative times "
                    "(“3 min ago”) show the exact time on hover."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("As my browser asks"))] + [
            (code, translation.get_language_info(code)["name_local"])
            for code, _name in settings.LANGUAGES
        ]
        self.fields["time_zone"].choices = [("", _("My browser's time zone"))] + [
            (z, z) for z in _zones()
        ]


@login_required
def preferences(request):
    pref, _created = UserPreference.objects.get_or_create(user=request.user)
    form = PreferencesForm(request.POST or None,
                           initial={"language": pref.language, "time_zone": pref.time_zone})
    if request.method == "POST" and form.is_valid():
        pref.language = form.cleaned_data["language"]
        pref.time_zone = form.cleaned_data["time_zone"]
        pref.save()
        response = redirect("preferences")
        if pref.language:
            translation.activate(pref.language)
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, pref.language,
                                samesite="Lax", max_age=365 * 24 * 3600)
        else:
            response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        messages.success(request, _("Preferences saved."))
        return response
    return render(request, "preferences.html", {"form": form})


@require_POST
def switch_language(request):
    """The header's language switcher: remembered in a cookie, and in the
    user's preferences when signed in (so it follows them to other browsers)."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    response = redirect(target)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax",
                        max_age=365 * 24 * 3600)
    if request.user.is_authenticated:
        UserPreference.objects.update_or_create(user=request.user,
                                                defaults={"language": language})
    return response
