"""Seed the demo: one cluster of real machines, three tenants, users, tokens.

Idempotent: a second run keeps users, passwords and tokens (read back from
``var/demo-credentials.json``) and refreshes the inventory.
"""

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from console.core.actions.inventory import do_register_host
from console.core.actions.tenants import do_set_quota
from console.core.actions.tokens import do_issue_demo_token
from console.core.models import Cluster, FirmwareBaseline, Membership, Tenant
from coupler_demo.profiles import inventory_for
from hostagent import sim

# The demo's hosts (dgx-a100-01…, hgx-h100-01…, ada-pcie-01…, ws-5090-01…) come
# from hostagent.sim.DEMO_FLEET: the same list rundemo configures the agent from.
DEMO_HOSTS = sim.DEMO_FLEET

# slug, name, weight, quotas: (resource, gpu_model, guaranteed, limit)
DEMO_TENANTS = [
    ("aurora", "Aurora Labs", 2, [("gpus", "", 24, 48), ("gpus", "H100-SXM5-80GB", 8, 24),
                                   ("gpu_milli", "", 2000, 4000), ("vcpus", "", 512, 1024),
                                   ("memory_gib", "", 4096, 8192)]),
    ("borealis", "Borealis AI", 1, [("gpus", "", 16, 32), ("gpu_milli", "", 2000, 4000),
                                     ("vcpus", "", 256, 768), ("memory_gib", "", 2048, 6144)]),
    ("cirrus", "Cirrus Research", 1, [("gpus", "", 8, 16), ("gpu_milli", "", 1000, 3000),
                                      ("vcpus", "", 128, 384), ("memory_gib", "", 1024, 3072)]),
]


def credentials_path() -> Path:
    return settings.VAR_DIR / "demo-credentials.json"


def _load_previous() -> dict:
    path = credentials_path()
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            return {}
    return {}


def _user(username: str, password: str, *, staff: bool, token: str = "") -> tuple[object, str]:
    """The demo user with this password, and its API token: ``token`` (last run's,
    from the credentials file) while it is still usable, else a new one."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if created or not user.check_password(password):
        user.set_password(password)
    user.is_staff = staff
    user.is_superuser = staff
    user.save()
    return user, do_issue_demo_token(user, name="demo", actor="seed_demo", keep=token)


def seed_demo(url: str = "http://127.0.0.1:8000/") -> dict:
    previous = _load_previous()
    old_passwords = {previous.get("admin", {}).get("username"): previous.get("admin", {}).get(
        "password")}
    old_tokens = {previous.get("admin", {}).get("username"): previous.get("admin", {}).get(
        "token")}
    for entry in previous.get("tenants", []):
        old_passwords[entry["username"]] = entry["password"]
        old_tokens[entry["username"]] = entry.get("token")

    def password_for(username: str) -> str:
        return old_passwords.get(username) or secrets.token_urlsafe(12)

    with transaction.atomic():
        cluster, _ = Cluster.objects.get_or_create(
            slug="demo", defaults={"name": "Demo cluster",
                                   "description": "Simulated hosts built from real captures"}
        )
        for name, kind, index, rack in sim.demo_hosts():
            do_register_host(
                cluster=cluster,
                name=name,
                inventory=inventory_for(kind, name, group=rack, index=index),
                actor="seed_demo",
                simulated=True,
            )
        dgx = sim.KINDS["dgx_a100"]
        FirmwareBaseline.objects.update_or_create(
            board_name=dgx.board_name,
            defaults={"bios_version": dgx.bios_version, "gpu_vbios": dgx.vbios,
                      "driver_version": dgx.driver_version},
        )
        admin_password = password_for("admin")
        _admin, admin_token = _user("admin", admin_password, staff=True,
                                    token=old_tokens.get("admin") or "")
        tenants = []
        for slug, name, weight, quotas in DEMO_TENANTS:
            tenant, _ = Tenant.objects.update_or_create(
                slug=slug, defaults={"name": name, "weight": weight}
            )
            for resource, model, guaranteed, limit in quotas:
                do_set_quota(tenant, resource=resource, gpu_model=model,
                             guaranteed=guaranteed, limit=limit)
            username = f"{slug}-member"
            password = password_for(username)
            user, token = _user(username, password, staff=False,
                                token=old_tokens.get(username) or "")
            Membership.objects.get_or_create(user=user, tenant=tenant)
            tenants.append({"slug": slug, "username": username, "password": password,
                            "token": token})
    credentials = {
        "url": url,
        "admin": {"username": "admin", "password": admin_password, "token": admin_token},
        "tenants": tenants,
    }
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials, indent=2) + "\n")
    path.chmod(0o600)
    return credentials
