"""What the user declares: the project folder read into plain specs."""

from gristmill.project.definition import PROJECT_FILE, Project, find_root
from gristmill.project.loader import load_project
from gristmill.project.specs import CheckSpec, ModelSpec, SourceSpec, SourceTable

__all__ = [
    "PROJECT_FILE",
    "CheckSpec",
    "ModelSpec",
    "Project",
    "SourceSpec",
    "SourceTable",
    "find_root",
    "load_project",
]
