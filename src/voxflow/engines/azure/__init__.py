"""Azure Speech on the official SDK: push streams, continuous recognition, sessions, retries."""

from voxflow.engines.azure.config import AzureOptions
from voxflow.engines.azure.engine import AzureEngine

__all__ = ["AzureEngine", "AzureOptions"]
