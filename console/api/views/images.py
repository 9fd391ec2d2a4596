"""The image catalogue: each cluster's boot images. Like clusters and hosts it is
not tenant data: any signed-in user reads it (to name an image in a job); adding,
changing and removing images is for platform admins (members get 403).

An image's ``checksum`` is ``sha256:<64 lowercase hex digits>`` of its disk file,
which the host agent verifies before it makes a job's copy-on-write overlay.
"""

import django_filters
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from console.api.exceptions import Conflict
from console.api.permissions import IsAdminOrReadOnly
from console.api.serializers import SlugField, StrictFieldsMixin
from console.core.actions.images import (
    ImageInUse,
    do_create_image,
    do_delete_image,
    do_update_image,
)
from console.core.models import Cluster, Image
from hostagent.protocol import FILE_NAME_RE, IMAGE_FORMATS, SHA256_RE

CHECKSUM_PREFIX = "sha256:"
CHECKSUM_MESSAGE = "Use sha256:<64 lowercase hexadecimal digits> (the disk file's SHA-256)."
FILE_NAME_MESSAGE = ("A file name in the agent's images directory: letters, digits, _ . + -, "
                     "no slashes, at most 128 characters.")
MIN_DISK_MAX = 65536


class ChecksumField(serializers.CharField):
    """``sha256:<hex>`` in the API, the bare hex digest in the model."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        digest = value[len(CHECKSUM_PREFIX):] if value.startswith(CHECKSUM_PREFIX) else ""
        if not SHA256_RE.match(digest):
            raise serializers.ValidationError(CHECKSUM_MESSAGE)
        return digest

    def to_representation(self, value):
        return f"{CHECKSUM_PREFIX}{value}" if value else ""


def _file_name(required: bool, help_text: str) -> serializers.CharField:
    return serializers.CharField(
        max_length=128, required=required, allow_blank=not required, help_text=help_text,
        validators=[RegexValidator(FILE_NAME_RE, FILE_NAME_MESSAGE)],
        **({} if required else {"default": ""}))


class ImageSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    cluster = SlugField(slug_field="slug", queryset=Cluster.objects.all(),
                        help_text="The cluster's slug (fixed once the image is made).")
    name = serializers.SlugField(max_length=100, help_text="Unique in its cluster; jobs "
                                 "name the image by it.")
    format = serializers.ChoiceField(choices=[(f, f) for f in IMAGE_FORMATS])
    disk = _file_name(True, "The disk image's file name in the agent's images directory.")
    checksum = ChecksumField(source="sha256", max_length=len(CHECKSUM_PREFIX) + 64,
                             help_text="sha256:<64 hex digits> of the disk file.")
    os = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    min_disk_gib = serializers.IntegerField(
        min_value=1, max_value=MIN_DISK_MAX, required=False, allow_null=True, default=None,
        help_text="The job's disk is at least this large, in GiB; null: the image's own size.")
    kernel = _file_name(False, "Direct kernel boot: the kernel's file name (blank: boot "
                        "from the disk).")
    initrd = _file_name(False, "Direct kernel boot: the initrd's file name.")
    cmdline = serializers.CharField(max_length=1024, required=False, allow_blank=True,
                                    default="", help_text="Kernel command line of a direct "
                                    "kernel boot (the serial console is added).")
    is_default = serializers.BooleanField(
        required=False, default=False,
        help_text="The cluster's image for jobs that name none (unsets the previous one).")

    class Meta:
        model = Image
        fields = ["id", "cluster", "name", "format", "disk", "checksum", "os", "min_disk_gib",
                  "kernel", "initrd", "cmdline", "is_default", "created_at"]
        read_only_fields = ["id", "created_at"]
        # Unique (cluster, name) and one default per cluster: the actions' rules.
        validators: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.instance, Image):
            self.fields["cluster"].read_only = True

    def validate(self, attrs):
        kernel = attrs.get("kernel", getattr(self.instance, "kernel", ""))
        initrd = attrs.get("initrd", getattr(self.instance, "initrd", ""))
        cmdline = attrs.get("cmdline", getattr(self.instance, "cmdline", ""))
        if (initrd or cmdline) and not kernel:
            field = "initrd" if initrd else "cmdline"
            raise serializers.ValidationError(
                {field: ["Only for direct kernel boot: name the kernel too."]})
        if "min_disk_gib" in attrs:
            attrs["min_disk_gib"] = attrs["min_disk_gib"] or 0
        return attrs

    def to_representation(self, instance):
        out = super().to_representation(instance)
        out["min_disk_gib"] = instance.min_disk_gib or None
        return out

    def create(self, validated_data):
        return do_create_image(actor=self.context["request"].user.get_username(),
                               **validated_data)

    def update(self, instance, validated_data):
        validated_data.pop("cluster", None)
        return do_update_image(instance, actor=self.context["request"].user.get_username(),
                               **validated_data)


class ImageFilterSet(django_filters.FilterSet):
    cluster = django_filters.ModelChoiceFilter(
        queryset=Cluster.objects.all(), to_field_name="slug", help_text="Cluster slug.")
    name = django_filters.CharFilter(help_text="Exact name.")

    class Meta:
        model = Image
        fields = ["cluster", "name", "format", "is_default"]


@extend_schema_view(
    list=extend_schema(summary="Boot images of every cluster"),
    retrieve=extend_schema(summary="One boot image"),
    create=extend_schema(summary="Add a boot image to a cluster (admin)"),
    update=extend_schema(summary="Change a boot image (admin)"),
    partial_update=extend_schema(summary="Change a boot image (admin)"),
    destroy=extend_schema(summary="Remove a boot image no unfinished job needs (admin; 409 "
                          "while jobs need it)"),
)
class ImageViewSet(viewsets.ModelViewSet):
    serializer_class = ImageSerializer
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = ImageFilterSet

    def get_queryset(self):
        return Image.objects.select_related("cluster").order_by("cluster__slug", "name")

    def perform_destroy(self, instance):
        try:
            do_delete_image(instance, actor=self.request.user.get_username())
        except ImageInUse as exc:
            raise Conflict(str(exc)) from None
