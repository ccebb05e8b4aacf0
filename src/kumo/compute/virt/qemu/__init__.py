"""The QEMU virt driver (``compute.driver = "qemu"``): real guests, one QEMU process each, over QMP.

Modules: ``driver`` (the VirtDriver), ``cmdline`` (the QEMU command line),
``guest`` (a guest's files and definition), ``disk`` (qemu-img, config
drive), ``qmp`` (monitor sessions), ``process`` (start, recognise, watch),
``accel`` (KVM only where it works), ``host`` (host facts).
"""

from kumo.compute.virt.qemu.driver import QemuDriver

__all__ = ["QemuDriver"]
