"""Run plumbing shared by the tools: command-line errors (``cli``), config options and launchers
(``cfg_options``, ``launch``), the GPU fast path (``fast_path``), the check for missing files
(``preflight``) and path helpers (``paths``). Checkpoint I/O is in ``dit_sam_mm.checkpoint``,
measurement in ``dit_sam_mm.analysis``."""
