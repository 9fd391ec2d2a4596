from django.db import models

from console.core.choices import CheckStatus, Risk


class CheckResult(models.Model):
    """The latest result of one host check (ids from CHECKS.md)."""

    host = models.ForeignKey("core.Host", on_delete=models.CASCADE, related_name="check_results")
    check_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=CheckStatus.choices)
    risk = models.CharField(max_length=16, choices=Risk.choices)
    title = models.CharField(max_length=200, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    remediation = models.TextField(blank=True)
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["host", "check_id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "check_id"], name="check_result_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.check_id}={self.status}"


class FirmwareBaseline(models.Model):
    """The firmware an admin expects on one kind of host (firmware.baseline)."""

    board_name = models.CharField(max_length=200, unique=True)
    bios_version = models.CharField(max_length=100, blank=True)
    gpu_vbios = models.CharField(max_length=100, blank=True)
    driver_version = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.board_name

    def as_dict(self) -> dict[str, str]:
        return {
            "board_name": self.board_name,
            "bios_version": self.bios_version,
            "gpu_vbios": self.gpu_vbios,
            "driver_version": self.driver_version,
        }
