"""/api/v1/images/: the clusters' boot-image catalogue. Any signed-in user reads it;
only admins add, change or remove images (members: 403); bad input is a 400 with
field messages, never a 500; an image unfinished jobs need is not removed (409)."""

import pytest

from console.core.choices import JobState
from console.core.models import Allocation, Cluster, Host, Image, Job

URL = "/api/v1/images/"
DIGEST = "ab" * 32
GOOD = {"cluster": "c1", "name": "ubuntu-24", "format": "qcow2", "disk": "ubuntu-24.qcow2",
        "checksum": f"sha256:{DIGEST}", "os": "Ubuntu 24.04", "min_disk_gib": 20}


@pytest.fixture
def clusters(db):
    c1 = Cluster.objects.create(name="One", slug="c1")
    c2 = Cluster.objects.create(name="Two", slug="c2")
    return c1, c2


@pytest.fixture
def image(clusters):
    return Image.objects.create(cluster=clusters[0], name="busybox", format="raw",
                                disk="busybox.img", sha256=DIGEST, is_default=True)


def test_any_signed_in_user_reads_the_catalogue_and_anonymous_users_do_not(
        client_for, member_a, member_b, image):
    for user in (member_a, member_b):
        listed = client_for(user).get(URL)
        assert listed.status_code == 200
        (row,) = listed.json()["results"]
        assert row["name"] == "busybox" and row["cluster"] == "c1"
        assert row["checksum"] == f"sha256:{DIGEST}" and row["min_disk_gib"] is None
        detail = client_for(user).get(f"{URL}{image.pk}/")
        assert detail.status_code == 200 and detail.json()["is_default"] is True
    assert client_for(None).get(URL).status_code in (401, 403)
    assert client_for(member_a).get(f"{URL}{image.pk + 100}/").status_code == 404


def test_members_may_not_write(client_for, member_a, image, clusters):
    client = client_for(member_a)
    assert client.post(URL, GOOD, format="json").status_code == 403
    assert client.patch(f"{URL}{image.pk}/", {"os": "x"}, format="json").status_code == 403
    assert client.delete(f"{URL}{image.pk}/").status_code == 403
    assert Image.objects.count() == 1 and Image.objects.get().os == ""


def test_an_admin_adds_changes_and_removes_an_image(client_for, admin_user, clusters, image):
    client = client_for(admin_user)
    made = client.post(URL, {**GOOD, "is_default": True}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["checksum"] == f"sha256:{DIGEST}" and body["min_disk_gib"] == 20
    new = Image.objects.get(pk=body["id"])
    assert (new.sha256, new.cluster.slug, new.is_default) == (DIGEST, "c1", True)
    image.refresh_from_db()
    assert image.is_default is False  # one default per cluster: the new one
    changed = client.patch(f"{URL}{new.pk}/", {"os": "Ubuntu 24.04.1", "min_disk_gib": None},
                           format="json")
    assert changed.status_code == 200, changed.json()
    new.refresh_from_db()
    assert (new.os, new.min_disk_gib) == ("Ubuntu 24.04.1", 0)
    # The cluster is fixed once the image is made.
    moved = client.patch(f"{URL}{new.pk}/", {"cluster": "c2"}, format="json")
    assert moved.status_code == 400 and "cluster" in moved.json()
    assert client.delete(f"{URL}{new.pk}/").status_code == 204
    assert not Image.objects.filter(pk=new.pk).exists()


@pytest.mark.parametrize(("overrides", "field"), [
    ({"format": "vmdk"}, "format"),
    ({"checksum": DIGEST}, "checksum"),  # the sha256: prefix is required
    ({"checksum": "sha256:" + "AB" * 32}, "checksum"),  # lowercase hex
    ({"checksum": "sha256:" + "ab" * 31}, "checksum"),
    ({"checksum": "md5:" + "ab" * 16}, "checksum"),
    ({"min_disk_gib": 0}, "min_disk_gib"),
    ({"min_disk_gib": -5}, "min_disk_gib"),
    ({"min_disk_gib": 10**12}, "min_disk_gib"),
    ({"min_disk_gib": "big"}, "min_disk_gib"),
    ({"name": "has space"}, "name"),
    ({"name": ""}, "name"),
    ({"disk": "../etc/shadow"}, "disk"),
    ({"disk": "/var/lib/x.img"}, "disk"),
    ({"kernel": "a/b"}, "kernel"),
    ({"initrd": "initrd.img"}, "initrd"),  # without a kernel
    ({"cluster": "nope"}, "cluster"),
    ({"cluster": "bad slug!"}, "cluster"),
    ({"name": "busybox"}, "name"),  # taken in c1
    ({"unknown": 1}, "unknown"),
    ({"is_default": "perhaps"}, "is_default"),
    ({"os": "x" * 101}, "os"),
])
def test_bad_input_is_a_400_with_the_fields_message(client_for, admin_user, image, overrides,
                                                    field):
    response = client_for(admin_user).post(URL, {**GOOD, **overrides}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}
    assert Image.objects.count() == 1


def test_the_same_name_in_another_cluster_is_fine(client_for, admin_user, image):
    response = client_for(admin_user).post(URL, {**GOOD, "name": "busybox", "cluster": "c2"},
                                           format="json")
    assert response.status_code == 201, response.json()
    # ... and renaming onto a name taken in its own cluster is refused with the field.
    other = Image.objects.get(cluster__slug="c2")
    Image.objects.create(cluster=other.cluster, name="taken", disk="t.img")
    renamed = client_for(admin_user).patch(f"{URL}{other.pk}/", {"name": "taken"}, format="json")
    assert renamed.status_code == 400 and set(renamed.json()) == {"name"}


def _job(tenant, state, image="busybox", host=None):
    job = Job.objects.create(tenant=tenant, name="j", gpus_per_host=0, vcpus_per_host=1,
                             memory_gib_per_host=1, image=image, state=state)
    if host is not None:
        Allocation.objects.create(job=job, host=host, cpus=[1], numa_nodes=[0], memory_gib=1)
    return job


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING])
def test_an_image_unfinished_jobs_need_is_not_removed(client_for, admin_user, tenant_a, image,
                                                      state):
    host = Host.objects.create(cluster=image.cluster, name="h1")
    job = _job(tenant_a, state, host=host if state == JobState.RUNNING else None)
    response = client_for(admin_user).delete(f"{URL}{image.pk}/")
    assert response.status_code == 409
    assert f"#{job.pk}" in response.json()["detail"]
    assert Image.objects.filter(pk=image.pk).exists()
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED)
    assert client_for(admin_user).delete(f"{URL}{image.pk}/").status_code == 204


def test_the_default_image_is_needed_by_placed_jobs_that_name_none(client_for, admin_user,
                                                                   tenant_a, image, clusters):
    here = Host.objects.create(cluster=image.cluster, name="h1")
    there = Host.objects.create(cluster=clusters[1], name="h2")
    _job(tenant_a, JobState.RUNNING, image="", host=there)  # another cluster's default
    _job(tenant_a, JobState.QUEUED, image="busybox-other")
    assert client_for(admin_user).delete(f"{URL}{image.pk}/").status_code == 204
    image = Image.objects.create(cluster=clusters[0], name="busybox", disk="b.img",
                                 is_default=True)
    job = _job(tenant_a, JobState.RUNNING, image="", host=here)
    response = client_for(admin_user).delete(f"{URL}{image.pk}/")
    assert response.status_code == 409 and f"#{job.pk}" in response.json()["detail"]


def test_the_api_root_lists_images(client_for, member_a):
    root = client_for(member_a).get("/api/v1/")
    assert root.status_code == 200 and root.json()["images"].endswith("/api/v1/images")


def test_a_job_naming_an_image_not_in_the_catalogue_is_a_400_on_the_image_field(
        client_for, member_a, image):
    body = {"tenant": "tenant-a", "name": "vm", "gpus_per_host": 0, "vcpus_per_host": 1,
            "memory_gib_per_host": 1}
    bad = client_for(member_a).post("/api/v1/jobs/", {**body, "image": "nope"}, format="json")
    assert bad.status_code == 400
    assert bad.json() == {"image": ["No image named 'nope' in the catalogue."]}
    good = client_for(member_a).post("/api/v1/jobs/", {**body, "image": "busybox"},
                                     format="json")
    assert good.status_code == 201 and good.json()["image"] == "busybox"
