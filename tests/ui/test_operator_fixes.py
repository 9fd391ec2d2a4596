"""What a new operator tripped on (issue 14's bugs), each proven from outside:
the HTML a browser gets, the JSON curl gets."""

import pytest

pytestmark = pytest.mark.django_db


def test_gpu_model_choice_lists_each_model_once(login, member_a, quotas_a):
    response = login(member_a).get("/jobs/new/")
    options = response.context["form"].fields["gpu_model"].widget.choices
    models = [value for value, _label in options if value]
    assert len(models) == len(set(models))
    assert len(models) == 3  # 24 GPUs in the test cluster, of 3 models


def test_unknown_gpu_model_error_lists_each_model_once(client_for, member_a, quotas_a, job_spec):
    response = client_for(member_a).post("/api/v1/jobs/", job_spec(gpu_model="B200"),
                                         format="json")
    assert response.status_code == 400
    message = str(response.json())
    assert message.count("A100-SXM4-40GB") == 1


def test_api_root_links_to_api_endpoints(client_for, member_a):
    body = client_for(member_a).get("/api/v1/").json()
    assert body, "the API root lists its endpoints"
    for name, url in body.items():
        assert "/api/v1/" in url, f"{name} links to {url}"


def test_post_without_trailing_slash_is_not_a_500(client_for, member_a, quotas_a, job_spec):
    response = client_for(member_a).post("/api/v1/jobs", job_spec(), format="json")
    assert response.status_code == 201, response.content[:300]


def test_404_is_a_styled_page_without_debug_output(client, member_a, settings):
    settings.DEBUG = False
    client.force_login(member_a)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and 'class="topbar"' in html
    assert "URLconf" not in html and "Traceback" not in html


def test_403_is_a_styled_page(client, member_a, settings):
    settings.DEBUG = False
    client.force_login(member_a)
    response = client.get("/checks/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed" in html and 'class="topbar"' in html


def test_500_is_a_styled_page_without_debug_output(client, settings):
    from django.test import Client

    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    from django.views.defaults import server_error

    response = server_error(client.get("/login/").wsgi_request)
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html and "Traceback" not in html
