"""The facade every interface calls (``Workspace``), and the types it hands back."""

from gristmill.workspace.facade import Workspace

__all__ = ["Workspace"]
