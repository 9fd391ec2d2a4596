"""``manage.py inject_fault``: make a realistic fault happen on a simulated
host, through the agent's normal path, so the incident drill-down and the
runbook can be tried in the demo.

The line is appended to the host's simulated kernel log
(``var/sim-kernel/<host>.log``, which ``rundemo`` hands the agent as the
host's ``kernel_log``); the agent's Xid scanner reads it and its next
heartbeat carries the event to the console, exactly as on a real host. With
``--now`` the console also handles it at once, in this process, from the same
parsed event (for a demo without the agent running, and for tests).

Kinds (lines in the shape of real captures, see hostagent/protocol/data and tests/fixtures):
  xid79  GPU has fallen off the bus: hardware; the GPU is cordoned and its
         jobs are moved to other hosts.
  xid13  Graphics engine exception in a job: application; the job holding the
         GPU fails, the GPU stays in service.
  aer    PCIe uncorrected fatal error on the GPU's link: hardware.
"""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from console.core.actions.xid_events import do_handle_xid
from console.core.choices import ACTIVE_JOB_STATES
from console.core.models import Allocation, Gpu, Host
from coupler_demo.simhosts import sim_kernel_log
from hostagent.xid import scan_text

KINDS = ("xid79", "xid13", "aer")


def fault_line(kind: str, gpu: Gpu, *, pid: int = 4242, process: str = "python3",
               now: datetime | None = None) -> str:
    """One kernel-log line as a real host logs it (syslog time stamp)."""
    now = now or datetime.now(UTC)
    stamp = f"{now:%b} {now.day:2d} {now:%H:%M:%S}"
    pci = gpu.pci_address.lower()
    bus = pci.rsplit(".", 1)[0]  # NVRM names the device without its function
    if kind == "xid79":
        return f"{stamp} {gpu.host.name} kernel: NVRM: Xid (PCI:{bus}): 79, GPU has fallen off the bus."
    if kind == "xid13":
        return (f"{stamp} {gpu.host.name} kernel: NVRM: Xid (PCI:{bus}): 13, pid={pid}, "
                f"name={process}, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): "
                "Illegal Instruction Parameter")
    if kind == "aer":
        # The root port reports; the source is the GPU.
        return (f"{stamp} {gpu.host.name} kernel: pcieport 0000:00:01.1: AER: Uncorrected "
                f"(Fatal) error received: {pci}")
    raise ValueError(kind)


def pick_gpu(host: Host, kind: str, index: int | None) -> Gpu:
    gpus = Gpu.objects.filter(host=host).order_by("index")
    if index is not None:
        gpu = gpus.filter(index=index).first()
        if gpu is None:
            raise CommandError(f"{host.name} has no GPU{index} (it has "
                               f"{', '.join(f'GPU{g.index}' for g in gpus) or 'no GPU'}).")
        return gpu
    # A GPU that a job holds makes the more instructive incident.
    held = (Allocation.objects.filter(host=host, gpu__isnull=False,
                                      job__state__in=ACTIVE_JOB_STATES)
            .order_by("gpu__index").values_list("gpu_id", flat=True).first())
    gpu = gpus.filter(pk=held).first() if held else gpus.exclude(cordoned=True).first()
    if gpu is None:
        raise CommandError(f"{host.name} has no GPU to fault.")
    return gpu


class Command(BaseCommand):
    help = "Inject a realistic fault (Xid 79, Xid 13, PCIe AER) on a simulated host."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("--host", required=True, help="a simulated host, e.g. dgx-a100-01")
        parser.add_argument("--gpu", type=int, default=None,
                            help="GPU index (default: one a job holds, else the first)")
        parser.add_argument("--now", action="store_true",
                            help="also handle it in this process, without waiting for the agent")

    def handle(self, *args, **opts):
        host = Host.objects.filter(name=opts["host"]).first()
        if host is None:
            raise CommandError(f"No host {opts['host']!r}.")
        if not host.simulated:
            raise CommandError(f"{host.name} is a real host: faults are injected on simulated "
                               "hosts only.")
        gpu = pick_gpu(host, opts["kind"], opts["gpu"])
        line = fault_line(opts["kind"], gpu)
        log = sim_kernel_log(host.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(line + "\n")
        self.stdout.write(f"{log}: {line}")
        if opts["now"]:
            opened = [inc for event in scan_text(line, host=host.name)
                      if (inc := do_handle_xid(host, event)) is not None]
            for incident in opened:
                self.stdout.write(f"incident #{incident.pk}: {incident.title} "
                                  f"(/faults/{incident.pk}/)")
        else:
            self.stdout.write("The demo's agent reports it with its next heartbeat; the incident "
                              "appears under Faults.")
