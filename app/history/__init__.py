"""Download history: one row per admitted token, written from the queue's journal."""
from .models import Download

__all__ = ["Download"]
