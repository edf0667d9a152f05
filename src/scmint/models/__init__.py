"""One LightningModule per method family, all deriving from :class:`IntegrationModule`."""

from scmint.models.autoencoders import AE, DAE, SAE
from scmint.models.base import DataMismatchError, IntegrationModule, Requirements
from scmint.models.smile import MPSMILE, PSMILE, SMILE
from scmint.models.teacher import TeacherComposition
from scmint.models.umint import UMINT

__all__ = [
    "AE",
    "DAE",
    "MPSMILE",
    "PSMILE",
    "SAE",
    "SMILE",
    "UMINT",
    "DataMismatchError",
    "IntegrationModule",
    "Requirements",
    "TeacherComposition",
]
