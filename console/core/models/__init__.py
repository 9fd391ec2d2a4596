from console.core.models.checks import CheckResult, FirmwareBaseline
from console.core.models.counters import FinishedJobCount, StartLatencyBucket
from console.core.models.faults import Incident
from console.core.models.images import Image
from console.core.models.inventory import Cluster, Gpu, GpuLink, Host, Nic, NicVf, NumaNode
from console.core.models.jobs import Allocation, CoreClaim, Event, Job, JobMember, NicVfClaim
from console.core.models.preferences import SavedFilter, UserPreference
from console.core.models.tenancy import Membership, Quota, Tenant
from console.core.models.tokens import ApiToken

__all__ = [
    "Allocation",
    "ApiToken",
    "CheckResult",
    "Cluster",
    "CoreClaim",
    "Event",
    "FinishedJobCount",
    "FirmwareBaseline",
    "Gpu",
    "GpuLink",
    "Host",
    "Image",
    "Incident",
    "Job",
    "JobMember",
    "Membership",
    "Nic",
    "NicVf",
    "NicVfClaim",
    "NumaNode",
    "Quota",
    "SavedFilter",
    "StartLatencyBucket",
    "Tenant",
    "UserPreference",
]
