"""workbench: a notebook-first evaluation and experimentation workbench for RAG pipelines.

Importing it changes nothing in the process: offline defaults are applied where models and
libraries load (`workbench.core.offline`).
"""

__version__ = "0.1.0"
