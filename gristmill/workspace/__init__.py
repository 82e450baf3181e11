"""The facade every interface calls (``Workspace``); ``types`` holds the types it hands back.

Importing it imports neither the runtime nor the project reader: the verbs do, when called."""

from gristmill.workspace.facade import Workspace, create_demo

__all__ = ["Workspace", "create_demo"]
