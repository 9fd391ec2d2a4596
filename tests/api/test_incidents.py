"""/api/v1/incidents/: read-only; a member sees incidents touching their tenants."""

import pytest

from console.core.models import Host, Incident

URL = "/api/v1/incidents/"


@pytest.fixture
def incident(cluster, tenant_a, tenant_b, job_a, job_b):
    """An Xid 79 on a host running a job of each tenant."""
    incident = Incident.objects.create(
        host=Host.objects.get(name="dgx-1"), title="GPU fell off the bus", xid=79,
        fault="hardware",
    )
    incident.tenants.set([tenant_a, tenant_b])
    incident.jobs.set([job_a, job_b])
    return incident


def test_member_of_a_sees_the_incident_but_only_their_own_tenant_and_jobs(
    incident, member_a, job_a, client_for
):
    response = client_for(member_a).get(f"{URL}{incident.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["tenants"] == ["tenant-a"]
    assert body["jobs"] == [job_a.pk]
    assert body["host"] == "dgx-1"


def test_member_of_b_sees_only_tenant_b_in_it(incident, member_b, job_b, client_for):
    body = client_for(member_b).get(f"{URL}{incident.pk}/").json()
    assert (body["tenants"], body["jobs"]) == (["tenant-b"], [job_b.pk])


def test_user_without_membership_gets_404(incident, outsider, client_for):
    assert client_for(outsider).get(f"{URL}{incident.pk}/").status_code == 404
    assert client_for(outsider).get(URL).json()["count"] == 0


def test_admin_sees_every_tenant_in_it(incident, admin_user, client_for):
    body = client_for(admin_user).get(f"{URL}{incident.pk}/").json()
    assert body["tenants"] == ["tenant-a", "tenant-b"]


def test_an_incident_of_another_tenant_is_404(cluster, tenant_b, member_a, client_for):
    other = Incident.objects.create(host=Host.objects.get(name="dgx-2"), title="Xid 48")
    other.tenants.set([tenant_b])
    assert client_for(member_a).get(f"{URL}{other.pk}/").status_code == 404


def test_anonymous_gets_401(incident, client_for):
    assert client_for(None).get(URL).status_code == 401


def test_incidents_are_read_only(incident, admin_user, client_for):
    assert client_for(admin_user).delete(f"{URL}{incident.pk}/").status_code == 405
