"""Exchanges as data for other programs: JSON records (headless lines and export files)."""

from .record import exchange_record

__all__ = ["exchange_record"]
