"""Self-contained projects of ``dit_sam_mm`` (MMSegmentation's ``projects/`` convention).

A regular package so that ``projects.<name>.<module_folder>`` resolves to this folder when the
repository root is on ``sys.path`` (``PYTHONPATH``), and not to a namespace package elsewhere.
"""
