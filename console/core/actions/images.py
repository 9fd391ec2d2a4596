"""The image catalogue's writes (admins): add, change and remove a cluster's boot
images. One transaction each; a cluster keeps at most one default image (making
one the default unsets the other), and an image that jobs still need is not removed.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from console.core.choices import TERMINAL_JOB_STATES
from console.core.models import Image, Job

log = logging.getLogger(__name__)

IMAGE_FIELDS = ("name", "format", "disk", "sha256", "os", "min_disk_gib", "kernel", "initrd",
                "cmdline", "is_default")


class ImageInUse(Exception):
    """The image is still needed by unfinished jobs (API: 409)."""


def _check_name(image: Image) -> None:
    taken = Image.objects.filter(cluster_id=image.cluster_id, name=image.name)
    if image.pk:
        taken = taken.exclude(pk=image.pk)
    if taken.exists():
        raise ValidationError({"name": [
            f"The cluster {image.cluster.slug} already has an image named {image.name!r}."]})


def _save(image: Image, *, actor: str, verb: str) -> Image:
    _check_name(image)
    image.full_clean(validate_unique=False, validate_constraints=False)
    if image.is_default:
        Image.objects.filter(cluster_id=image.cluster_id, is_default=True) \
            .exclude(pk=image.pk).update(is_default=False)
    image.save()
    log.info("%s: image %s of cluster %s %s", actor, image.name, image.cluster.slug, verb)
    return image


def do_create_image(*, cluster, actor: str, **fields) -> Image:
    """Add an image to a cluster's catalogue (``fields``: ``IMAGE_FIELDS``)."""
    with transaction.atomic():
        image = Image(cluster=cluster, **{k: v for k, v in fields.items() if k in IMAGE_FIELDS})
        return _save(image, actor=actor, verb="created")


def do_update_image(image: Image, *, actor: str, **fields) -> Image:
    """Change an image's fields; its cluster stays."""
    with transaction.atomic():
        image = Image.objects.select_for_update().select_related("cluster").get(pk=image.pk)
        for key, value in fields.items():
            if key in IMAGE_FIELDS:
                setattr(image, key, value)
        return _save(image, actor=actor, verb="updated")


def jobs_needing(image: Image):
    """Unfinished jobs that boot (or may yet boot) from ``image``: those naming it, and
    for the cluster's default image those naming none, not yet placed or placed on
    one of the image's cluster's hosts."""
    unplaced = ~Q(allocations__isnull=False)
    here = Q(allocations__host__cluster_id=image.cluster_id)
    where = Q(image=image.name) & (unplaced | here)
    if image.is_default:
        where |= Q(image="") & here
    return Job.objects.exclude(state__in=TERMINAL_JOB_STATES).filter(where).distinct()


def do_delete_image(image: Image, *, actor: str) -> None:
    """Remove an image from the catalogue, unless unfinished jobs need it."""
    with transaction.atomic():
        image = Image.objects.select_for_update().select_related("cluster").get(pk=image.pk)
        users = list(jobs_needing(image).order_by("pk").values_list("pk", flat=True)[:11])
        if users:
            shown = ", ".join(f"#{pk}" for pk in users[:10]) + (", …" if len(users) > 10 else "")
            raise ImageInUse(f"Image {image.name!r} is in use by unfinished jobs ({shown}): "
                             "cancel them or wait until they finish.")
        log.info("%s: image %s of cluster %s deleted", actor, image.name, image.cluster.slug)
        image.delete()
