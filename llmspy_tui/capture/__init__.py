"""Capture layer: eBPF uprobes on TLS libraries (live) or a recording (replay) -> CaptureEvents.

The only package that imports bcc, and only lazily, from loader.py/kernel_env.py at live start:
replay and everything downstream work without bcc or root.
"""
