"""Saved filters of the job, host and fault lists: per user, by name, saved,
applied and deleted from the list page (htmx or plain forms); another user's
saved filter is a 404."""

import pytest

from console.core.models import SavedFilter


@pytest.fixture
def saved_a(member_a):
    return SavedFilter.objects.create(user=member_a, list="jobs", name="Running A100",
                                      query="gpu_model=A100&state=running")


@pytest.mark.parametrize(("list_name", "url", "query"), [
    ("jobs", "/jobs/", "state=queued&gpu_model=a100&page=3"),
    ("hosts", "/hosts/", "state=cordoned&name=dgx"),
    ("faults", "/faults/", "state=open&host=dgx-1"),
])
def test_a_list_filter_is_saved_under_a_name_and_shown_on_its_list(
        login, member_a, cluster, list_name, url, query):
    client = login(member_a)
    page = client.get(f"{url}?{query}").content.decode()
    assert 'id="saved-filters"' in page and "Save this filter as" in page
    response = client.post(f"/saved-filters/{list_name}/", {"name": "Mine", "query": query})
    saved = SavedFilter.objects.get(user=member_a, list=list_name, name="Mine")
    assert "page=" not in saved.query  # the page is not part of a filter
    assert response.status_code == 302 and response["Location"] == f"{url}?{saved.query}"
    html = client.get(url).content.decode()
    assert f'href="{url}?{saved.query.replace("&", "&amp;")}"' in html and ">Mine</a>" in html


def test_saving_under_the_same_name_replaces_it(login, member_a, saved_a):
    client = login(member_a)
    client.post("/saved-filters/jobs/", {"name": "Running A100", "query": "state=queued"})
    assert list(SavedFilter.objects.filter(user=member_a).values_list("name", "query")) == [
        ("Running A100", "state=queued")]


def test_htmx_gets_the_panel_back_without_a_reload(login, member_a, cluster):
    client = login(member_a)
    response = client.post("/saved-filters/hosts/", {"name": "Cordoned", "query": "state=cordoned"},
                           HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="saved-filters"')
    assert 'href="/hosts/?state=cordoned"' in html


@pytest.mark.parametrize(("data", "why"), [
    ({"name": "", "query": "state=queued"}, "This field cannot be blank."),
    ({"name": "x" * 81, "query": "state=queued"}, "at most 80 characters"),
    ({"name": "Nothing", "query": "page=2"}, "nothing to save"),
])
def test_a_bad_save_says_why_and_saves_nothing(login, member_a, cluster, data, why):
    client = login(member_a)
    htmx = client.post("/saved-filters/jobs/", data, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400 and why in htmx.content.decode()
    plain = client.post("/saved-filters/jobs/", data, follow=True)
    assert plain.status_code == 200 and why in plain.content.decode()
    assert not SavedFilter.objects.exists()


def test_an_unknown_list_is_404(login, member_a):
    assert login(member_a).post("/saved-filters/tenants/",
                                {"name": "x", "query": "a=b"}).status_code == 404


def test_apply_goes_to_the_list_with_the_filter_in_the_address(login, member_a, saved_a):
    response = login(member_a).get(f"/saved-filters/{saved_a.pk}/apply/")
    assert response.status_code == 302
    assert response["Location"] == "/jobs/?gpu_model=A100&state=running"


def test_delete_removes_it(login, member_a, saved_a):
    client = login(member_a)
    response = client.post(f"/saved-filters/{saved_a.pk}/delete/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "No saved filters yet." in response.content.decode()
    assert not SavedFilter.objects.exists()


def test_another_users_saved_filter_is_404(login, member_b, saved_a):
    client = login(member_b)
    assert client.get(f"/saved-filters/{saved_a.pk}/apply/").status_code == 404
    assert client.post(f"/saved-filters/{saved_a.pk}/delete/").status_code == 404
    assert SavedFilter.objects.filter(pk=saved_a.pk).exists()
    assert "Running A100" not in client.get("/jobs/").content.decode()


def test_even_an_admin_sees_only_their_own(login, admin_user, saved_a):
    client = login(admin_user)
    assert client.get(f"/saved-filters/{saved_a.pk}/apply/").status_code == 404
    assert "Running A100" not in client.get("/jobs/").content.decode()


def test_signed_out_users_are_sent_to_log_in(client, saved_a):
    response = client.post("/saved-filters/jobs/", {"name": "x", "query": "state=queued"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert SavedFilter.objects.count() == 1
