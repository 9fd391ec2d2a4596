"""Shared fixtures: the tenancy trio (a member of tenant A, a member of tenant
B, a user with no membership), an admin, and a small cluster of real machines
built from real `nvidia-smi topo -m` captures."""

import pytest

# Tests that start real processes on resources fixed for the whole run run on one
# pytest-xdist worker per group, one after another (`make test` runs `-n auto --dist
# loadgroup`); everything else spreads over the workers, each with its own test
# database (test_<db>_gwN). The groups, by path:
SERIAL_GROUPS = {
    "tests/workflow/test_broker.py": "broker",  # one Redis database, one orchestrator + agent
    "tests/deploy/test_prod_stack.py": "prod-stack",  # <db>_prod_smoke, COUPLER_SMOKE_REDIS_DB
    "tests/browser/": "browser",  # one Chromium per module, the memory of a worker
}


def serial_group(nodeid: str) -> str | None:
    return next((group for prefix, group in SERIAL_GROUPS.items() if nodeid.startswith(prefix)),
                None)


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above. Decided here, on the controller, by
    node id: pytest 9.2 ignores the node-id suffix by which xdist 3.8 carries
    ``xdist_group`` marks from the workers (pytest-xdist issue #1386), so marks alone
    would spread a group over the workers."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class SerialGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return serial_group(nodeid) or super()._split_scope(nodeid)

    return SerialGroups(config, log)


@pytest.fixture(autouse=True)
def _eager_celery_unless_broker_test(request):
    """Logic tests run Celery tasks in-process; tests marked ``broker`` talk to
    the real broker (Redis in CI) through real workers."""
    if not request.config.pluginmanager.hasplugin("django"):
        # Pure-package runs (`-p no:django`) have no Django settings to touch.
        yield
        return
    from console.celery import app

    eager = request.node.get_closest_marker("broker") is None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(request):
    """User fixtures hash a password; the production hasher takes ~0.2 s a user."""
    if request.config.pluginmanager.hasplugin("django"):
        settings = request.getfixturevalue("settings")
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        # Django's test client logs in without a request, which django-axes refuses;
        # the lockout tests (tests/api/test_abuse_limits.py) switch it back on.
        settings.AXES_ENABLED = False
        # API throttles and submit limits off, except in the tests about them.
        settings.COUPLER_API_THROTTLE = False
        settings.COUPLER_TENANT_MAX_QUEUED = 0
        settings.COUPLER_TENANT_SUBMITS_PER_MIN = 0


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (the dashboard caches what it derives)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def tenant_a(db):
    from console.core.models import Tenant

    return Tenant.objects.create(name="Tenant A", slug="tenant-a", weight=1)


@pytest.fixture
def tenant_b(db):
    from console.core.models import Tenant

    return Tenant.objects.create(name="Tenant B", slug="tenant-b", weight=1)


def _user(username, *, staff=False):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username=username, password="correct horse battery staple", is_staff=staff
    )
    return user


@pytest.fixture
def member_a(tenant_a):
    from console.core.models import Membership

    user = _user("alice")
    Membership.objects.create(user=user, tenant=tenant_a)
    return user


@pytest.fixture
def member_b(tenant_b):
    from console.core.models import Membership

    user = _user("bob")
    Membership.objects.create(user=user, tenant=tenant_b)
    return user


@pytest.fixture
def outsider(db):
    return _user("mallory")


@pytest.fixture
def admin_user(db):
    return _user("root", staff=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for():
    """client_for(user) -> an APIClient authenticated by a personal API token of the user."""
    from rest_framework.test import APIClient

    from console.core.actions.tokens import do_create_api_token

    secrets: dict = {}

    def make(user):
        client = APIClient()
        if user is not None:
            if user.pk not in secrets:
                _token, secrets[user.pk] = do_create_api_token(user, name="tests", actor="test")
            client.credentials(HTTP_AUTHORIZATION=f"Token {secrets[user.pk]}")
        return client

    return make


@pytest.fixture
def cluster(db):
    """Two DGX A100s, one HGX H100 and one 4× RTX 6000 Ada PCIe server."""
    from console.core.actions.inventory import do_register_host
    from console.core.demo.profiles import inventory_for
    from console.core.models import Cluster

    cluster = Cluster.objects.create(name="Test cluster", slug="test")
    for name, kind, rack in [
        ("dgx-1", "dgx_a100", "rack-a"),
        ("dgx-2", "dgx_a100", "rack-a"),
        ("hgx-1", "hgx_h100", "rack-b"),
        ("ada-1", "pcie_rtx6000ada", "rack-c"),
    ]:
        do_register_host(cluster=cluster, name=name, inventory=inventory_for(kind, name, group=rack))
    return cluster


@pytest.fixture
def job_spec():
    """A valid submit body for tenant-a (override fields per test)."""

    def make(**overrides):
        body = {
            "tenant": "tenant-a",
            "name": "train-llm",
            "gpus_per_host": 2,
            "hosts": 1,
            "vcpus_per_host": 8,
            "memory_gib_per_host": 64,
            "priority": 0,
            "preemptible": True,
        }
        body.update(overrides)
        return body

    return make
