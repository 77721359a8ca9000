"""Telling local paths from Hugging Face hub names."""
import os


def looks_like_local_path(name: str) -> bool:
    """Whether ``name`` is meant as a directory rather than a hub id such as ``org/model``.

    ``/abs``, ``./rel``, ``~/x`` and anything with two or more separators
    (``data/pretrained/bert-base-uncased``) is a path; ``bert-base-uncased`` and
    ``google-bert/bert-base-uncased`` are hub ids.
    """
    separators = [sep for sep in (os.sep, os.altsep) if sep]
    if name.startswith(('/', '.', '~')) or any(name.startswith(sep) for sep in separators):
        return True
    return sum(name.count(sep) for sep in separators) >= 2
