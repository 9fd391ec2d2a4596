"""Per-host broker users (docs/deploy.md, "The trust boundary at the broker").

``manage.py broker_acl --redis`` prints the ``ACL SETUSER`` commands that give
every registered host a Redis user of its own (its queue, the answer queue
write-only, nothing else) and the console one with full access;
``--apply`` runs them against ``--redis-url`` (default ``REDIS_URL``).
``--rabbitmq`` prints the ``rabbitmqctl`` commands of the same policy.
Rules and passwords come from ``coupler_common.broker_acl``; a host's broker
password derives from its agent token (``do_issue_agent_token`` rotates both).
"""

from __future__ import annotations

import hashlib
import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from console.core.models import Host
from coupler_common import broker_acl


def _cli_quote(arg: str) -> str:
    """An argument for redis-cli: double quotes with \\xHH for control characters."""
    if arg.isprintable() and " " not in arg and '"' not in arg:
        return arg
    body = "".join(f"\\x{ord(c):02x}" if not c.isprintable() else
                   ("\\" + c if c in '"\\' else c) for c in arg)
    return f'"{body}"'


class Command(BaseCommand):
    help = "Print (or apply) per-host broker users: Redis ACLs or RabbitMQ permissions."

    def add_arguments(self, parser):
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--redis", action="store_true", help="Redis 6+ ACL users")
        kind.add_argument("--rabbitmq", action="store_true", help="rabbitmqctl commands")
        parser.add_argument("--apply", action="store_true",
                            help="run the ACL commands against --redis-url (Redis only)")
        parser.add_argument("--redis-url", default="", help="default: REDIS_URL")
        parser.add_argument("--host", action="append", default=[],
                            help="only these hosts (repeatable; default: every host)")
        parser.add_argument("--user-prefix", default=broker_acl.USER_PREFIX,
                            help="host users are named <prefix><host> (default: host-)")
        parser.add_argument("--console-user", default="coupler-console",
                            help="the console's user (full access); '' leaves it out")
        parser.add_argument("--console-password", default="",
                            help="the console user's password (needed with --apply)")
        parser.add_argument("--vhost", default="coupler", help="RabbitMQ virtual host")
        parser.add_argument("--show-passwords", action="store_true",
                            help="also print each host's broker password (for the agent's "
                                 "COUPLER_BROKER_URL, or rabbitmqctl add_user)")

    def handle(self, *args, **options):
        hosts = Host.objects.order_by("name")
        if options["host"]:
            hosts = hosts.filter(name__in=options["host"])
            missing = set(options["host"]) - set(hosts.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no such host: {', '.join(sorted(missing))}")
        hosts = list(hosts)
        if options["rabbitmq"]:
            return self._rabbitmq(hosts, options)
        commands = []
        if options["console_user"]:
            password = options["console_password"]
            secret = (f"#{hashlib.sha256(password.encode()).hexdigest()}" if password
                      else ">CONSOLE-PASSWORD")
            commands.append([options["console_user"], "reset", "on", secret,
                             "~*", "&*", "+@all"])
        skipped = []
        for host in hosts:
            if not host.agent_token_hash:
                skipped.append(host.name)
                continue
            password = broker_acl.broker_password_from_hash(host.agent_token_hash)
            rules = broker_acl.redis_acl_rules(
                host.name, hashlib.sha256(password.encode()).hexdigest(),
                prefix=options["user_prefix"])
            commands.append([broker_acl.user_name(host.name, options["user_prefix"]), *rules])
        for name in skipped:
            self.stderr.write(f"{name}: no agent token issued yet, no broker user")
        if options["apply"]:
            self._apply(commands, options)
        else:
            for command in commands:
                self.stdout.write("ACL SETUSER " + " ".join(_cli_quote(a) for a in command))
        if options["show_passwords"]:
            for host in hosts:
                if host.agent_token_hash:
                    user = broker_acl.user_name(host.name, options["user_prefix"])
                    password = broker_acl.broker_password_from_hash(host.agent_token_hash)
                    self.stdout.write(f"# {host.name}: redis://{user}:{password}@<redis>/<db>")

    def _apply(self, commands, options):
        import redis

        if options["console_user"] and not options["console_password"]:
            raise CommandError("--apply with a console user needs --console-password "
                               "(or --console-user '' to leave it out)")
        url = options["redis_url"] or getattr(settings, "REDIS_URL", "")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise CommandError("--apply needs --redis-url or REDIS_URL (redis://…)")
        client = redis.Redis.from_url(url)
        for command in commands:
            if command[0] == "default":
                raise CommandError("refusing to change Redis's default user")
            client.execute_command("ACL", "SETUSER", *command)
            self.stdout.write(f"applied: {command[0]}")

    def _rabbitmq(self, hosts, options):
        vhost = shlex.quote(options["vhost"])
        for host in hosts:
            user = shlex.quote(broker_acl.user_name(host.name, options["user_prefix"]))
            configure, write, read = (shlex.quote(r)
                                      for r in broker_acl.rabbitmq_permissions(host.name))
            password = (broker_acl.broker_password_from_hash(host.agent_token_hash)
                        if options["show_passwords"] and host.agent_token_hash
                        else "HOST-PASSWORD")
            self.stdout.write(f"rabbitmqctl add_user {user} {shlex.quote(password)}")
            self.stdout.write(f"rabbitmqctl set_permissions -p {vhost} {user} "
                              f"{configure} {write} {read}")
