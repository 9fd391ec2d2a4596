"""Shared fixtures: the tenancy trio (a member of tenant A, a member of tenant
B, a user with no membership), an admin, and a small cluster of real machines
built from real `nvidia-smi topo -m` captures."""

import os

import pytest

# Tests that start real processes on resources fixed for the whole run (a Redis
# database, a database name, Chromium) run apart from the rest, one after another:
# `make test` runs them in their own pytest process (COUPLER_TEST_PART=serial)
# beside the pytest-xdist run of everything else (COUPLER_TEST_PART=parallel). Not
# as an xdist group: a group shares its worker with other tests, and a stack of
# real workers left up by a module fixture would run their cycles against that
# worker's database while eager tests ran there. Serial are the tests marked
# ``broker`` or ``browser`` and these paths:
SERIAL_GROUPS = {
    "tests/workflow/test_broker.py": "broker",  # one Redis database, one orchestrator + agent
    "tests/deploy/test_prod_stack.py": "prod-stack",  # <db>_prod_smoke, COUPLER_SMOKE_REDIS_DB
    "tests/deploy/test_broker_acl.py": "broker-acl",  # Redis users, a real agent worker
    "tests/browser/": "browser",  # one Chromium per module, the memory of a worker
}


def serial_group(nodeid: str) -> str | None:
    return next((group for prefix, group in SERIAL_GROUPS.items() if nodeid.startswith(prefix)),
                None)


def is_serial(item) -> bool:
    return (serial_group(item.nodeid) is not None
            or item.get_closest_marker("broker") is not None
            or item.get_closest_marker("browser") is not None)


def pytest_collection_modifyitems(config, items):
    part = os.environ.get("COUPLER_TEST_PART", "")
    if part not in ("serial", "parallel"):
        return
    keep = [item for item in items if is_serial(item) == (part == "serial")]
    dropped = [item for item in items if is_serial(item) != (part == "serial")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_configure(config):
    """With Redis as the cache (CI), each pytest process keeps its entries under its
    own prefix and empties only those (``_empty_cache``): Django's ``clear()`` would
    flush the database the other processes' tests use at the same time."""
    if not config.pluginmanager.hasplugin("django") or not os.environ.get("REDIS_URL"):
        return
    from django.conf import settings
    from django.core.cache import caches

    if "RedisCache" not in settings.CACHES["default"]["BACKEND"]:
        return
    settings.CACHES["default"]["KEY_PREFIX"] = f"coupler-test-{os.getpid()}"
    from asgiref.local import Local

    # Any cache made before this point was made with the old prefix: start afresh.
    caches.close_all()
    caches.__dict__.pop("settings", None)
    caches._connections = Local(caches.thread_critical)


@pytest.fixture(scope="session", autouse=True)
def _in_process_agent(request):
    """Eager mode's host side: the agent's own handlers, behind the console's
    in-process transport (``console.core.hostcalls``), wired as the demo wires it."""
    if not request.config.pluginmanager.hasplugin("django"):
        yield
        return
    from console.core import hostcalls
    from coupler_demo.simhosts import install_in_process_agent

    install_in_process_agent()
    yield
    hostcalls.install_local_agent(None)


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
    from django.conf import settings
    from django.core.cache import cache

    if "RedisCache" in settings.CACHES["default"]["BACKEND"]:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*"):
            client.delete(key)
    else:
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
    from console.core.models import Cluster
    from coupler_demo.profiles import inventory_for

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
