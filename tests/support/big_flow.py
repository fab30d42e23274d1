"""A large generated flow: menus chained one after the other, each with two options, a timeout, a
failure and a description, until the file has the size asked for. The big-flow tests and
bench/lint_bench.py read it."""

from __future__ import annotations

#: one node of the generated flow, about 170 bytes
NODE = """\
  n{i}:
    description: node number {i} of the big generated flow
    menu: main-menu
    options:
      1: {next}
      2: end
    timeout: 5
    failure: end
"""


def generate(megabytes: float) -> str:
    parts = ["flow: big\nlanguages: [en]\nstart: n0\nnodes:\n"]
    size, i = len(parts[0]), 0
    while size < megabytes * 1024 * 1024:
        part = NODE.format(i=i, next=f"n{i + 1}")
        parts.append(part)
        size += len(part)
        i += 1
    parts.append(f"  n{i}:\n    hangup: goodbye\n  end:\n    hangup: goodbye\n")
    return "".join(parts)
