"""The image catalogue: bootable VM images, per cluster, managed by admins.

An image names files in each host agent's images directory (``images_dir``),
never a path: the agent verifies the disk's SHA-256 before it makes the job's
copy-on-write overlay (``hostagent.images``).  A job names an image by
``name``; blank means the cluster's default image.
"""

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from hostagent.protocol import FILE_NAME_RE, IMAGE_FORMATS, SHA256_RE, ImageSpec

FILE_NAME_VALIDATOR = RegexValidator(
    FILE_NAME_RE, "A file name in the agent's images directory: letters, digits, _ . + -, "
    "no slashes.")
SHA256_VALIDATOR = RegexValidator(SHA256_RE, "64 lowercase hexadecimal digits.")


class Image(models.Model):
    cluster = models.ForeignKey("core.Cluster", on_delete=models.CASCADE, related_name="images")
    name = models.SlugField(max_length=100)
    format = models.CharField(max_length=8, choices=[(f, f) for f in IMAGE_FORMATS],
                              default="qcow2")
    disk = models.CharField(max_length=128, validators=[FILE_NAME_VALIDATOR],
                            help_text="The disk image's file name in the agent's images directory.")
    sha256 = models.CharField(max_length=64, blank=True, validators=[SHA256_VALIDATOR],
                              help_text="The disk's SHA-256; the agent refuses a different file.")
    os = models.CharField("OS", max_length=100, blank=True)
    min_disk_gib = models.PositiveIntegerField(
        default=0, validators=[MinValueValidator(0)],
        help_text="The job's overlay is at least this large (0: the image's size).")
    kernel = models.CharField(max_length=128, blank=True, validators=[FILE_NAME_VALIDATOR],
                              help_text="Direct kernel boot: the kernel's file name.")
    initrd = models.CharField(max_length=128, blank=True, validators=[FILE_NAME_VALIDATOR])
    cmdline = models.CharField(max_length=1024, blank=True,
                               help_text="Kernel command line (the serial console is added).")
    is_default = models.BooleanField(default=False,
                                     help_text="The cluster's image for jobs that name none.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="image_unique_name"),
            models.UniqueConstraint(fields=["cluster"], condition=Q(is_default=True),
                                    name="image_one_default_per_cluster"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cluster})"

    def to_spec(self) -> ImageSpec:
        return ImageSpec(name=self.name, disk=self.disk, format=self.format, sha256=self.sha256,
                         kernel=self.kernel, initrd=self.initrd, cmdline=self.cmdline,
                         min_disk_gib=self.min_disk_gib)
