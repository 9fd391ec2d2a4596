import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env,
        capture_output=True, text=True, timeout=120,
    )


def test_production_configuration_passes_check_deploy():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SETTINGS_MODULE="console.settings", DEBUG="", SECRET_KEY="k" * 20 + "a-long-random-production-secret-value-0123456789",
        ALLOWED_HOSTS="coupler.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DJANGO_SETTINGS_MODULE="console.settings", DEBUG="0",
                        SECRET_KEY="", ALLOWED_HOSTS="x")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_environment_switches_database_and_broker():
    code = (
        "from django.conf import settings;"
        "print(settings.DATABASES['default']['ENGINE']);"
        "print(settings.CELERY_BROKER_URL)"
    )
    result = run_manage(
        "shell", "--no-imports", "-c", code,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    engine, broker = result.stdout.split()
    assert engine == "django.db.backends.postgresql"
    assert broker == "redis://127.0.0.1:6379/0"


def test_defaults_need_no_server():
    code = (
        "from django.conf import settings;"
        "print(settings.DATABASES['default']['ENGINE']);"
        "print(settings.CELERY_BROKER_URL)"
    )
    result = run_manage("shell", "--no-imports", "-c", code)
    assert result.returncode == 0, result.stderr
    engine, broker = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert broker.startswith("atomicfs://")


PRODUCTION_KEY = "k" * 20 + "a-long-random-production-secret-value-0123456789"


def _prod(**env):
    return {"DJANGO_SETTINGS_MODULE": "console.settings", "DEBUG": "", **env}


def test_debug_is_off_unless_asked_for_even_with_a_real_host():
    code = "from django.conf import settings; print(settings.DEBUG)"
    result = run_manage("shell", "--no-imports", "-c", code,
                        **_prod(SECRET_KEY=PRODUCTION_KEY, ALLOWED_HOSTS="coupler.example.com"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_debug_a_missing_or_development_key_refuses_to_start():
    for key in ("", "dev-only-insecure-key-" + "x" * 40, "short", "a" * 60):
        result = run_manage("check", **_prod(SECRET_KEY=key, ALLOWED_HOSTS="coupler.example.com"))
        assert result.returncode != 0, key
        assert "SECRET_KEY must be set" in result.stderr, key


def test_without_debug_allowed_hosts_are_required():
    result = run_manage("check", **_prod(SECRET_KEY=PRODUCTION_KEY, ALLOWED_HOSTS=""))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must name" in result.stderr


def test_the_development_settings_are_explicit():
    code = "from django.conf import settings; print(settings.DEBUG, settings.ALLOWED_HOSTS[0])"
    result = run_manage("shell", "--no-imports", "-c", code,
                        DJANGO_SETTINGS_MODULE="console.settings_dev", DEBUG="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "localhost"]


def test_the_sqlite_file_is_created_owner_only(tmp_path):
    result = run_manage("shell", "--no-imports", "-c", "pass",
                        DJANGO_SETTINGS_MODULE="console.settings_dev",
                        COUPLER_VAR_DIR=str(tmp_path / "var"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "coupler.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
