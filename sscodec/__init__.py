"""sscodec: a streaming neural speech codec.

One import namespace over the repository's folders (setuptools maps each into it): `sscodec.common` (torch-free
shared pieces), `sscodec.codec` (the torch model), `sscodec.train`, `sscodec.export`, `sscodec.stream` (the edge
runtime) and `sscodec.benchmarks`. See docs/CONTRACTS.md for how they may import each other.
"""

from sscodec.common.startup import hold_interrupts_while_starting

hold_interrupts_while_starting()
