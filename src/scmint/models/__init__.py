"""One LightningModule per method family, all deriving from :class:`IntegrationModule`."""

from scmint.models.base import DataMismatchError, IntegrationModule, Requirements
from scmint.models.umint import UMINT

__all__ = ["UMINT", "DataMismatchError", "IntegrationModule", "Requirements"]
