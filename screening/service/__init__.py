"""The screening service: CDS Hooks (discovery, ``patient-view`` cards) and a JSON API (FastAPI).

Install with the ``service`` extra (``pip install 'screening[service]'``) and run
``screening serve --trials DIR``; see docs/service.md. ``create_app`` builds the ASGI app.
"""
from .app import Settings, create_app, load_trial_folder

__all__ = ["create_app", "Settings", "load_trial_folder"]
