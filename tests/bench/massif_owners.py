#!/usr/bin/env python3
"""Heap growth between two massif detailed snapshots, by owner.

    massif_owners.py SRCDIR BEFORE AFTER CYCLES [MAX_STINTD_BYTES_PER_CYCLE]

BEFORE and AFTER are files written by valgrind's massif monitor command
`detailed_snapshot` (run with --threshold=0). Every leaf of the heap tree
(one allocation stack) is given to an owner by the frames on its stack:
SoftHSM2 if any frame is in libsofthsm2, else SQLite if any is in
libsqlite3, else stintd if any frame is in one of stintd's own sources
(a .c file under SRCDIR/attest or SRCDIR/common, so also what OpenSSL or
libc allocate for stintd's calls), else "other". Prints each
owner's heap in both snapshots and the growth per cycle. With a fourth
argument, exits 1 when stintd's own heap grew by more than that many bytes
per cycle (a leak in our code rather than in a library).
"""
import os
import re
import sys

NODE = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
SRC_FRAME = re.compile(r"\(([^():]+\.c):\d+\)$")
OURS = set()


def our_sources(srcdir):
    for sub in ("attest", "common"):
        for _, _, files in os.walk(os.path.join(srcdir, sub)):
            OURS.update(f for f in files if f.endswith(".c"))


def ours(frame):
    m = SRC_FRAME.search(frame)
    return m is not None and os.path.basename(m.group(1)) in OURS
OWNERS = ("stintd", "SoftHSM2", "SQLite", "other")


def owner(frames):
    if any("libsofthsm2" in f for f in frames):
        return "SoftHSM2"
    if any("libsqlite3" in f for f in frames):
        return "SQLite"
    if any(ours(f) for f in frames):
        return "stintd"
    return "other"


def heap_by_owner(path):
    totals = dict.fromkeys(OWNERS, 0)
    stack = []
    total = 0
    with open(path) as f:
        for line in f:
            m = NODE.match(line.rstrip("\n"))
            if m is None:
                continue
            depth = len(m.group(1))
            children, size, desc = int(m.group(2)), int(m.group(3)), m.group(4)
            del stack[depth:]
            stack.append(desc)
            if depth == 0:
                total = size
            elif children == 0:
                totals[owner(stack[1:])] += size
    return total, totals


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    our_sources(sys.argv[1])
    cycles = int(sys.argv[4])
    t0, before = heap_by_owner(sys.argv[2])
    t1, after = heap_by_owner(sys.argv[3])
    print("  heap by owner (massif), %d cycles between the snapshots:" % cycles)
    for o in OWNERS:
        d = after[o] - before[o]
        print("    %-9s %10d B -> %10d B   %+8.1f B/cycle"
              % (o, before[o], after[o], d / cycles))
    print("    %-9s %10d B -> %10d B   %+8.1f B/cycle"
          % ("total", t0, t1, (t1 - t0) / cycles))
    if len(sys.argv) == 6:
        limit = float(sys.argv[5])
        ours = (after["stintd"] - before["stintd"]) / cycles
        if ours > limit:
            print("  stintd's own heap grew %.1f B/cycle (limit %.0f)"
                  % (ours, limit))
            sys.exit(1)


main()
