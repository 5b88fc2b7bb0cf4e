#!/usr/bin/python3
"""npm run bench: the same slab cache walked by drgn (the reference a kernel engineer would script),
timed beside sysak memleak. Prints one JSON line: seconds to open the dump and load debug info, seconds
to walk every allocated object of the cache (drgn's slab_cache_for_each_allocated_object, which reads
every struct page and every freelist), the count, and the bytes of the cache's slab memory.

QEMU's ELF dumps give PT_LOADs with vaddr == paddr, which drgn 0.0.22 cannot translate on its own
("recursive address translation"): this script maps the kernel image range to physical memory with
phys_base from VMCOREINFO (the kernel text lives at __START_KERNEL_map + phys_base), and everything else
then goes through the kernel's page tables as usual.

usage: drgn-walk.py VMCORE.elf VMLINUX CACHE [--read]   (--read also reads every object's bytes)
"""
import json
import sys
import time

import drgn
from drgn.helpers.linux.slab import find_slab_cache, slab_cache_for_each_allocated_object

START_KERNEL_MAP = 0xFFFFFFFF80000000
IMAGE_SIZE = 1 << 30
MASK = (1 << 64) - 1


def vmcoreinfo_number(path, name):
    """NUMBER(name)= from the VMCOREINFO note of an ELF core (read from the notes, not via drgn)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    key = ("NUMBER(%s)=" % name).encode()
    at = head.find(key)
    if at < 0:
        return None
    end = head.index(b"\n", at)
    return int(head[at + len(key):end]) & MASK


def main():
    core, vmlinux, cache_name = sys.argv[1:4]
    read_bytes = "--read" in sys.argv[4:]
    t0 = time.time()
    prog = drgn.Program()
    prog.set_core_dump(core)
    phys_base = vmcoreinfo_number(core, "phys_base")
    if phys_base is not None:
        def image(address, count, offset, physical):
            return prog.read((address - START_KERNEL_MAP + phys_base) & MASK, count, True)
        prog.add_memory_segment(START_KERNEL_MAP, IMAGE_SIZE, image)
    prog.load_debug_info([vmlinux])
    t_open = time.time() - t0
    cache = find_slab_cache(prog, cache_name)
    size = cache.size.value_()
    t1 = time.time()
    n = 0
    for obj in slab_cache_for_each_allocated_object(cache, "unsigned char"):
        if read_bytes:
            prog.read(obj.value_(), size)
        n += 1
    walk = time.time() - t1
    print(json.dumps({"tool": "drgn %s" % drgn.__version__, "open_s": round(t_open, 2), "walk_s": round(walk, 2),
                      "objects": n, "object_size": size, "read_bytes": read_bytes}))


if __name__ == "__main__":
    main()
