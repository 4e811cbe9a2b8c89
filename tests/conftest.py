"""Shared paths for every test suite."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLLECTION = ROOT / "collections" / "ansible_collections" / "tensafe" / "k8s"
ROLES = COLLECTION / "roles"
